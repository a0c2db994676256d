#!/usr/bin/env bash
# build.sh — build the libFuzzer targets (fuzz_json, fuzz_csv, fuzz_rules,
# fuzz_batch, fuzz_http) into build-fuzz/ with clang, ASan and UBSan.
#
# The sources of engine/, lua/, cli/input.c, server/ingest/batch.c (for
# fuzz_batch: it depends on engine/ alone) and, for fuzz_http, every file of
# server/ plus the dashboard's assets (cmake/embed.cmake) are compiled
# directly (not through CMake) so that every object carries the fuzzer's
# coverage instrumentation; only the libraries they link (Hyperscan, cJSON,
# libcrypto, zlib, Lua 5.4; for fuzz_http also libmicrohttpd, libnats,
# hiredis, libcurl) come from pkg-config, uninstrumented.
#
# Usage: tests/fuzz/build.sh [target...]      (default: all five)
# Env:   CC (default clang; must be clang with libFuzzer), BUILD_DIR
#        (default <repo>/build-fuzz), FUZZ_CFLAGS (extra flags),
#        FUZZ_SRC_ROOT (default <repo>: where engine/, lua/, cli/, server/, dashboards/ are read
#        from; point it at a `git archive` of a commit to fuzz a fixed
#        snapshot while the working tree changes).
#        FUZZ_JOBS (default 2): compilers run at once.
# Everything is recompiled each time (about 10 s; 60 s with fuzz_http's
# server/): headers change layouts, and a stale object would give false crashes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$(cd "${FUZZ_SRC_ROOT:-$ROOT}" && pwd)
OUT=${BUILD_DIR:-$ROOT/build-fuzz}
CC=${CC:-clang}
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_json fuzz_csv fuzz_rules fuzz_batch fuzz_http)
for t in "${TARGETS[@]}"; do
    case $t in fuzz_json|fuzz_csv|fuzz_rules|fuzz_batch|fuzz_http) ;; *) echo "tests/fuzz/build.sh: unknown target '$t' (fuzz_json, fuzz_csv, fuzz_rules, fuzz_batch, fuzz_http)" >&2; exit 1 ;; esac
done
WANT_HTTP=0
case " ${TARGETS[*]} " in *" fuzz_http "*) WANT_HTTP=1 ;; esac

die() { echo "tests/fuzz/build.sh: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 || die "'$CC' not found: the fuzz targets need clang with libFuzzer (apt-get install clang)"
"$CC" --version 2>/dev/null | grep -qi clang || die "'$CC' is not clang: libFuzzer (-fsanitize=fuzzer) is clang-only"
command -v pkg-config >/dev/null 2>&1 || die "pkg-config not found"
PKGS="libhs libcjson libcrypto zlib lua5.4"
pkg-config --exists $PKGS || die "missing libraries: pkg-config cannot find some of: $PKGS"
SERVER_PKGS="libmicrohttpd libnats hiredis libcurl"
if [ $WANT_HTTP = 1 ]; then
    pkg-config --exists $SERVER_PKGS || die "fuzz_http: missing libraries: pkg-config cannot find some of: $SERVER_PKGS"
    command -v cmake >/dev/null 2>&1 || die "fuzz_http: cmake not found (it embeds the dashboard's assets: cmake/embed.cmake)"
fi

rm -rf "$OUT/obj"
mkdir -p "$OUT/obj"

# libFuzzer present? (clang without compiler-rt's fuzzer runtime fails here)
probe="$OUT/obj/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
"$CC" -fsanitize=fuzzer,address,undefined "$probe" -o "$OUT/obj/probe" >/dev/null 2>&1 ||
    die "'$CC' cannot link -fsanitize=fuzzer,address,undefined: libFuzzer runtime missing (install clang's compiler-rt: apt-get install libclang-rt-14-dev, see scripts/deps.sh)"

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=gnu11 -O1 -g $SAN -Wall -Wextra -Wno-unused-parameter ${FUZZ_CFLAGS:-}"
INC="-I$SRC/engine/include -I$SRC/engine/src -I$SRC/lua/include -I$SRC/lua/src -I$SRC/cli -I$SRC/server/ingest $(pkg-config --cflags $PKGS)"
DEFS="-DFUZZ_LISTS_DIR=\"$ROOT/tests/fuzz/lists\""
LIBS="$(pkg-config --libs $PKGS) -lm -lpthread"
# the server's own includes name paths from the root ("server/route/router.h")
SERVER_INC="-I$SRC $(pkg-config --cflags $SERVER_PKGS 2>/dev/null || true)"
SERVER_LIBS="$(pkg-config --libs $SERVER_PKGS 2>/dev/null || true)"

# compile one source into obj/ in the background, at most FUZZ_JOBS (default 2:
# the machine is shared) at a time; its object's path goes to $OBJ. `finish`
# waits for all of them and fails if one did.
JOBS=${FUZZ_JOBS:-2}
RUNNING=0
FAILED="$OUT/obj/failed"
compile() {
    local rel=${1#"$SRC"/}
    rel=${rel#"$ROOT"/}
    OBJ="$OUT/obj/${rel//\//_}.o"
    if [ "$RUNNING" -ge "$JOBS" ]; then wait -n || true; RUNNING=$((RUNNING - 1)); fi
    { $CC $CFLAGS $INC $DEFS ${2:-} -c "$1" -o "$OBJ" || echo "$1" >>"$FAILED"; } &
    RUNNING=$((RUNNING + 1))
}
finish() {
    wait
    RUNNING=0
    [ ! -s "$FAILED" ] || die "compiling failed: $(tr '\n' ' ' <"$FAILED")"
}

ENGINE_OBJS=()
for s in "$SRC"/engine/src/*.c; do compile "$s"; ENGINE_OBJS+=("$OBJ"); done
LUA_OBJS=()
for s in "$SRC"/lua/src/*.c; do compile "$s"; LUA_OBJS+=("$OBJ"); done
compile "$SRC/cli/input.c"
INPUT_OBJ=$OBJ
BATCH_OBJ=
case " ${TARGETS[*]} " in *" fuzz_batch "*) compile "$SRC/server/ingest/batch.c"; BATCH_OBJ=$OBJ ;; esac
SERVER_OBJS=()
if [ $WANT_HTTP = 1 ]; then   # all of server/ (batch.c among them: the same object as fuzz_batch's)
    while IFS= read -r s; do
        [ "$s" = "$SRC/server/ingest/batch.c" ] && [ -n "$BATCH_OBJ" ] && { SERVER_OBJS+=("$BATCH_OBJ"); continue; }
        compile "$s" "$SERVER_INC"; SERVER_OBJS+=("$OBJ")
    done < <(find "$SRC/server" -name '*.c' | LC_ALL=C sort)
    # the static content, as CMakeLists.txt embeds it (cmake/embed.cmake)
    cmake -DOUT="$OUT/obj/dashboard_assets.c" -DDIR="$SRC/dashboards/web" -DNAME=vigil_assets \
        -P "$SRC/cmake/embed.cmake" || die "embedding the dashboard's assets failed"
    compile "$OUT/obj/dashboard_assets.c"
    SERVER_OBJS+=("$OBJ")
    cmake -DOUT="$OUT/obj/docs_assets.c" -DDIR="$SRC/docs" -DFILES=openapi.yaml -DNAME=vigil_docs -DPREFIX=/v1/ \
        -P "$SRC/cmake/embed.cmake" || die "embedding the OpenAPI document failed"
    compile "$OUT/obj/docs_assets.c"
    SERVER_OBJS+=("$OBJ")
fi
TARGET_OBJS=()
for t in "${TARGETS[@]}"; do
    if [ "$t" = fuzz_http ]; then compile "$ROOT/tests/fuzz/$t.c" "$SERVER_INC"; else compile "$ROOT/tests/fuzz/$t.c"; fi
    TARGET_OBJS+=("$OBJ")
done
finish

i=0
for t in "${TARGETS[@]}"; do
    case $t in
        fuzz_json|fuzz_rules) extra=("${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        fuzz_csv) extra=("$INPUT_OBJ" "${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        fuzz_batch) extra=("$BATCH_OBJ" "${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        fuzz_http) extra=("${SERVER_OBJS[@]}" "${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        *) die "unknown target '$t' (fuzz_json, fuzz_csv, fuzz_rules, fuzz_batch, fuzz_http)" ;;
    esac
    tlibs=$LIBS
    [ "$t" = fuzz_http ] && tlibs="$SERVER_LIBS $LIBS"
    $CC $CFLAGS -fsanitize=fuzzer "${TARGET_OBJS[$i]}" "${extra[@]}" $tlibs -o "$OUT/$t" || die "linking $t failed"
    i=$((i + 1))
    echo "built $OUT/$t"
done
