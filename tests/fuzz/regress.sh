#!/usr/bin/env bash
# regress.sh — the fuzz regression run for CI: build the five libFuzzer
# targets (build.sh), then run each once over its kept corpus
# (tests/fuzz/corpus/<json|csv|rules|batch|http>/), no new inputs generated. Any crash,
# leak, sanitizer report or timeout makes the script exit non-zero; the
# failing input is written under build-fuzz/artifacts/. Takes well under a
# minute on one core.
#
# Usage: tests/fuzz/regress.sh [target...]    (default: fuzz_json fuzz_csv fuzz_rules fuzz_batch fuzz_http)
# Env:   FUZZ_NO_BUILD=1   reuse build-fuzz/ as it is
#        FUZZ_CRASHES=1    also run tests/fuzz/crashes/<target>/ (known bugs: fails until fixed)
#        plus build.sh's CC, BUILD_DIR, FUZZ_SRC_ROOT, FUZZ_CFLAGS.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${BUILD_DIR:-$ROOT/build-fuzz}
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_json fuzz_csv fuzz_rules fuzz_batch fuzz_http)

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    "$ROOT/tests/fuzz/build.sh" "${TARGETS[@]}" || { echo "tests/fuzz/regress.sh: build failed" >&2; exit 2; }
fi

mkdir -p "$OUT/artifacts"
fail=0
for t in "${TARGETS[@]}"; do
    corpus="$ROOT/tests/fuzz/corpus/${t#fuzz_}"
    bin="$OUT/$t"
    [ -x "$bin" ] || { echo "FAIL $t: $bin not built" >&2; fail=1; continue; }
    [ -d "$corpus" ] || { echo "FAIL $t: no corpus $corpus" >&2; fail=1; continue; }
    dirs=("$corpus")
    if [ "${FUZZ_CRASHES:-0}" = 1 ] && [ -d "$ROOT/tests/fuzz/crashes/$t" ]; then
        dirs+=("$ROOT/tests/fuzz/crashes/$t")
    fi
    log="$OUT/artifacts/$t.log"
    start=$(date +%s)
    # -runs=0: execute the corpus once, do not mutate; leaks are checked at each input
    "$bin" -runs=0 -rss_limit_mb=2048 -timeout=30 -detect_leaks=1 \
        -artifact_prefix="$OUT/artifacts/$t-" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    n=$(find "${dirs[@]}" -type f | wc -l)
    if [ $rc -eq 0 ] && grep -q '^#[0-9]*[[:space:]]*DONE' "$log"; then
        echo "ok   $t: $n inputs in $(( $(date +%s) - start )) s"
    else
        echo "FAIL $t (exit $rc): see $log" >&2
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written|^Running:' "$log" | head -20 >&2
        fail=1
    fi
done
exit $fail
