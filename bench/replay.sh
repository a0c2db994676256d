#!/usr/bin/env bash
# replay.sh — the replay benchmark (issues 2 and 3): the 4-month card file
# with rules/fraud, and in the same run the decode-only pass over the same
# files (read + gunzip + CSV decode + merge, no engine: our ceiling). The
# full replay runs twice: as shipped (--threads 1: everything on one
# thread) and pipelined (--threads 2: a reader thread decodes while the one
# engine thread matches). Runs each RUNS times alternately and reports the best
# events/s of each, the ratios and peak memory (max RSS). Needs ../shared/data
# and a build in build/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
VIGIL=${VIGIL:-$ROOT/build/vigil}
RUNS=${RUNS:-3}
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
RP=$DATA/fdh-fraud-reports-2018-04-to-07.csv.gz
[ -f "$TX" ] || { echo "bench: $TX not found (the card data lives in ../shared/data)"; exit 1; }
[ -x "$VIGIL" ] || { echo "bench: build vigil first (cmake -S . -B build && cmake --build build)"; exit 1; }
ARGS=(--rules "$ROOT/rules/fraud" --input "tx=$TX" --input "report=$RP"
      --time-field tx_datetime,report_datetime --id-field transaction_id,report_id --output /dev/null)
rate() { sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p'; }
rss() { sed -n 's/peak memory: \([0-9.]*\) MiB.*/\1/p'; }
best_full=0; best_one=0; best_dec=0; rss_full=0; rss_one=0; rss_dec=0
for i in $(seq 1 "$RUNS"); do
    out=$("$VIGIL" replay --threads 2 "${ARGS[@]}" 2>&1 >/dev/null)
    r=$(echo "$out" | rate); m=$(echo "$out" | rss)
    [ "$r" -gt "$best_full" ] && best_full=$r; rss_full=$m
    out=$("$VIGIL" replay --threads 1 "${ARGS[@]}" 2>&1 >/dev/null)
    r=$(echo "$out" | rate); m=$(echo "$out" | rss)
    [ "$r" -gt "$best_one" ] && best_one=$r; rss_one=$m
    out=$("$VIGIL" replay --decode-only "${ARGS[@]}" 2>&1 >/dev/null)
    r=$(echo "$out" | rate); m=$(echo "$out" | rss)
    [ "$r" -gt "$best_dec" ] && best_dec=$r; rss_dec=$m
done
ratio=$(awk -v a="$best_full" -v b="$best_dec" 'BEGIN { printf "%.1f", 100 * a / b }')
ratio1=$(awk -v a="$best_one" -v b="$best_dec" 'BEGIN { printf "%.1f", 100 * a / b }')
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "date:    $(date -u +%Y-%m-%d)"
echo "replay rules/fraud, reader thread + 1 engine thread (--threads 2): $best_full events/s (best of $RUNS), peak RSS $rss_full MiB, $ratio % of decode-only"
echo "replay rules/fraud, all on one thread (--threads 1, default)     : $best_one events/s (best of $RUNS), peak RSS $rss_one MiB, $ratio1 % of decode-only"
echo "decode only                                                   : $best_dec events/s (best of $RUNS), peak RSS $rss_dec MiB"
