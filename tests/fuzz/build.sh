#!/usr/bin/env bash
# build.sh — build the libFuzzer targets (fuzz_json, fuzz_csv, fuzz_rules,
# fuzz_batch) into build-fuzz/ with clang, ASan and UBSan.
#
# The sources of engine/, lua/, cli/input.c and server/ingest/batch.c (only
# for fuzz_batch: it depends on engine/ alone) are compiled directly (not
# through CMake) so that every object carries the fuzzer's coverage
# instrumentation; only the libraries they link (Hyperscan, cJSON,
# libcrypto, zlib, Lua 5.4) come from pkg-config, uninstrumented.
#
# Usage: tests/fuzz/build.sh [target...]      (default: all four)
# Env:   CC (default clang; must be clang with libFuzzer), BUILD_DIR
#        (default <repo>/build-fuzz), FUZZ_CFLAGS (extra flags),
#        FUZZ_SRC_ROOT (default <repo>: where engine/, lua/, cli/, server/ are read
#        from; point it at a `git archive` of a commit to fuzz a fixed
#        snapshot while the working tree changes).
# Everything is recompiled each time (about 10 s): headers change layouts,
# and a stale object would give false crashes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$(cd "${FUZZ_SRC_ROOT:-$ROOT}" && pwd)
OUT=${BUILD_DIR:-$ROOT/build-fuzz}
CC=${CC:-clang}
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_json fuzz_csv fuzz_rules fuzz_batch)
for t in "${TARGETS[@]}"; do
    case $t in fuzz_json|fuzz_csv|fuzz_rules|fuzz_batch) ;; *) echo "tests/fuzz/build.sh: unknown target '$t' (fuzz_json, fuzz_csv, fuzz_rules, fuzz_batch)" >&2; exit 1 ;; esac
done

die() { echo "tests/fuzz/build.sh: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 || die "'$CC' not found: the fuzz targets need clang with libFuzzer (apt-get install clang)"
"$CC" --version 2>/dev/null | grep -qi clang || die "'$CC' is not clang: libFuzzer (-fsanitize=fuzzer) is clang-only"
command -v pkg-config >/dev/null 2>&1 || die "pkg-config not found"
PKGS="libhs libcjson libcrypto zlib lua5.4"
pkg-config --exists $PKGS || die "missing libraries: pkg-config cannot find some of: $PKGS"

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

# compile one source into obj/; its object's path goes to $OBJ
compile() {
    local rel=${1#"$SRC"/}
    rel=${rel#"$ROOT"/}
    OBJ="$OUT/obj/${rel//\//_}.o"
    $CC $CFLAGS $INC $DEFS -c "$1" -o "$OBJ" || die "compiling $1 failed"
}

ENGINE_OBJS=()
for s in "$SRC"/engine/src/*.c; do compile "$s"; ENGINE_OBJS+=("$OBJ"); done
LUA_OBJS=()
for s in "$SRC"/lua/src/*.c; do compile "$s"; LUA_OBJS+=("$OBJ"); done
compile "$SRC/cli/input.c"
INPUT_OBJ=$OBJ
BATCH_OBJ=
case " ${TARGETS[*]} " in *" fuzz_batch "*) compile "$SRC/server/ingest/batch.c"; BATCH_OBJ=$OBJ ;; esac

for t in "${TARGETS[@]}"; do
    case $t in
        fuzz_json|fuzz_rules) extra=("${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        fuzz_csv) extra=("$INPUT_OBJ" "${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        fuzz_batch) extra=("$BATCH_OBJ" "${LUA_OBJS[@]}" "${ENGINE_OBJS[@]}") ;;
        *) die "unknown target '$t' (fuzz_json, fuzz_csv, fuzz_rules, fuzz_batch)" ;;
    esac
    compile "$ROOT/tests/fuzz/$t.c"
    $CC $CFLAGS -fsanitize=fuzzer "$OBJ" "${extra[@]}" $LIBS -o "$OUT/$t" || die "linking $t failed"
    echo "built $OUT/$t"
done
