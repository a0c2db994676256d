#!/usr/bin/env bash
# compare_builds.sh — is a change slower? Two builds of vigil side by side,
# in one run, alternating, so that the machine's noise falls on both alike
# (issue 10: "bench/replay.sh and bench/durable.sh are no slower than
# before: the medians of 5 alternating runs of the old and the new build are
# within 3 %").
#
#   OLD=/path/to/old/build-bench NEW=build-bench bash bench/compare_builds.sh
#
# OLD and NEW are build folders (Release) holding vigil and the bench tools
# (bench/durable.sh's TOOLS); build the old one from a worktree of the old
# commit:  git worktree add /tmp/old <rev> && cmake -S /tmp/old -B /tmp/old/build-bench
# -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/old/build-bench --target vigil …
# Per round (ROUNDS, default 5), old first on odd rounds and new first on even ones:
#   replay   `vigil replay --threads 1` of the card data with rules/fraud
#            (events/s from its summary), as bench/replay.sh runs it;
#   durable  bench/durable.sh with PHASES (default "js core"), RUNS=1,
#            BUILD=<the build>: JetStream → engine → Redis and core NATS →
#            engine, events/s of vigil.
# Prints every sample, then per measure the medians and new/old. Needs
# ../shared/data, nats-server, redis-server (as durable.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
OLD=${OLD:?set OLD to the old build folder}
NEW=${NEW:-$ROOT/build-bench}
ROUNDS=${ROUNDS:-5}
PHASES=${PHASES:-"js core"}
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
RP=$DATA/fdh-fraud-reports-2018-04-to-07.csv.gz
[ -f "$TX" ] || { echo "compare: $TX not found (the card data lives in ../shared/data)"; exit 1; }
for b in "$OLD" "$NEW"; do [ -x "$b/vigil" ] || { echo "compare: no vigil in $b"; exit 1; }; done
OUT=$(mktemp -d /tmp/vigil-compare.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

replay() {   # replay BUILD -> events/s
    "$1/vigil" replay --threads 1 --rules "$ROOT/rules/fraud" --input "tx=$TX" --input "report=$RP" \
        --time-field tx_datetime,report_datetime --id-field transaction_id,report_id --output /dev/null 2>&1 >/dev/null |
        sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' | tail -1
}

durable() {   # durable BUILD TAG: appends "measure value" lines to $OUT/TAG
    local log="$OUT/durable-$2-$3.log"
    BUILD=$1 PHASES=$PHASES RUNS=1 CORE_SNAP=0 bash "$ROOT/bench/durable.sh" > "$log" 2>&1 || true
    sed -n 's/^  js run 1: .*vigil \([0-9]*\) events\/s.*/js \1/p; s/^  core run 1: .*vigil \([0-9]*\) events\/s.*/core \1/p' \
        "$log" >> "$OUT/$2"
}

one() {   # one BUILD TAG ROUND
    echo "replay $(replay "$1")" >> "$OUT/$2"
    durable "$1" "$2" "$3"
    echo "  round $3 $2: $(tail -3 "$OUT/$2" | tr '\n' ' ')"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); old $OLD, new $NEW; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then one "$OLD" old "$r"; one "$NEW" new "$r"
    else one "$NEW" new "$r"; one "$OLD" old "$r"; fi
done
median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo
printf "%-8s %12s %12s %8s   %s\n" measure "old median" "new median" "new/old" "samples old | new"
for m in replay js core; do
    o=$(awk -v m=$m '$1 == m {print $2}' "$OUT/old" | median)
    n=$(awk -v m=$m '$1 == m {print $2}' "$OUT/new" | median)
    printf "%-8s %12s %12s %8s   %s | %s\n" "$m" "$o" "$n" "$(awk -v o="$o" -v n="$n" 'BEGIN {printf (o > 0 ? "%.3f" : "nan"), n / o}')" \
        "$(awk -v m=$m '$1 == m {printf "%s ", $2}' "$OUT/old")" "$(awk -v m=$m '$1 == m {printf "%s ", $2}' "$OUT/new")"
done
