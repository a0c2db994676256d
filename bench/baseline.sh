#!/usr/bin/env bash
# baseline.sh — vigil against a plain single-pass Python script that hard-codes
# the same three rules (bench/baseline.py, bench/rules_baseline/): checks that
# the alert counts are equal, then times both whole processes on the 4-month
# card file in one run (best of RUNS each, alternating) and prints the ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
VIGIL=${VIGIL:-$ROOT/build/vigil}
RUNS=${RUNS:-3}
# the interpreter itself, not a version-manager shim (pyenv's costs ~50 ms a start)
PY=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
OLD_PY=${OLD_PY:-}   # optional: an older baseline script, timed beside the current one
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
[ -f "$TX" ] || { echo "baseline: $TX not found"; exit 1; }
py=$("$PY" "$ROOT/bench/baseline.py" "$TX")
vg=$("$VIGIL" replay --rules "$ROOT/bench/rules_baseline" --input "$TX" --time-field tx_datetime \
       --id-field transaction_id --output /dev/null 2>&1 | awk '$1 ~ /^(over_220|four_in_1h|small_then_big)$/ {print $1, $2}' | sort)
echo "python: $(echo "$py" | sort | tr '\n' ' ')"
echo "vigil:  $(echo "$vg" | tr '\n' ' ')"
[ "$(echo "$py" | sort)" = "$vg" ] || { echo "baseline: alert counts differ"; exit 1; }
now() { date +%s.%N; }
best_py=999999; best_vg=999999; best_old=999999
for i in $(seq 1 "$RUNS"); do
    if [ -n "$OLD_PY" ]; then
        t0=$(now); "$PY" "$OLD_PY" "$TX" >/dev/null; t1=$(now)
        best_old=$(awk -v a="$best_old" -v b="$(echo "$t1 - $t0" | bc)" 'BEGIN { print (b < a) ? b : a }')
    fi
    t0=$(now); "$PY" "$ROOT/bench/baseline.py" "$TX" >/dev/null; t1=$(now)
    best_py=$(awk -v a="$best_py" -v b="$(echo "$t1 - $t0" | bc)" 'BEGIN { print (b < a) ? b : a }')
    t0=$(now); "$VIGIL" replay --rules "$ROOT/bench/rules_baseline" --input "$TX" --time-field tx_datetime \
        --id-field transaction_id --output /dev/null 2>/dev/null; t1=$(now)
    best_vg=$(awk -v a="$best_vg" -v b="$(echo "$t1 - $t0" | bc)" 'BEGIN { print (b < a) ? b : a }')
done
n=$(zcat "$TX" | tail -n +2 | wc -l)
[ -n "$OLD_PY" ] && awk -v n="$n" -v p="$best_old" 'BEGIN { printf "old python script: %.2f s (%.0f events/s)\n", p, n / p }'
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); date $(date -u +%Y-%m-%dT%H:%MZ); $("$PY" --version); load $(cut -d" " -f1-3 /proc/loadavg)"
awk -v n="$n" -v p="$best_py" -v v="$best_vg" 'BEGIN {
    printf "python baseline: %.2f s (%.0f events/s)\nvigil replay:    %.2f s (%.0f events/s)\nvigil / python:  %.2fx faster\n",
           p, n / p, v, n / v, p / v }'
