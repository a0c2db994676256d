#!/usr/bin/env bash
# alert_ids.sh — proves that two builds of vigil raise the same alerts on the
# card data (issue 16: "the alert ids of `vigil replay` on the card data are
# identical before and after"). Replays the 4-month card file and its fraud
# reports with rules/fraud through both builds (`vigil replay --threads 1
# --output FILE`), then compares
#   1. the sorted alert ids, and
#   2. the sorted alert lines with their `detected_at` removed (the only field
#      that depends on the wall clock): rule, key, ts, events, window_events,
#      evidence and details must be byte for byte the same.
# Prints both counts and "identical", or the first differences; exit 1 when
# they differ.
#
#   bash bench/alert_ids.sh 30e4f15          # REV built in a temporary worktree under /tmp
#                                            # vs build-bench/vigil (built if missing)
#   OLD=/path/to/old/vigil NEW=/path/to/new/vigil bash bench/alert_ids.sh
#   RULES=rules/fraud THREADS=1 ...          # the rule set (of this tree) and replay's threads
#
# The rule files are this tree's for both builds. The temporary worktree and
# its build are removed on exit (trap; `git worktree remove`). Needs
# ../shared/data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
RULES=${RULES:-$ROOT/rules/fraud}
THREADS=${THREADS:-1}
REV=${1:-${REV:-}}
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
RP=$DATA/fdh-fraud-reports-2018-04-to-07.csv.gz
[ -f "$TX" ] && [ -f "$RP" ] || { echo "alert_ids: the card data is not in $DATA (set VIGIL_DATA_DIR)"; exit 1; }
[ -n "${OLD:-}" ] || [ -n "$REV" ] || { echo "usage: bash bench/alert_ids.sh REV   (or OLD=/path/to/vigil [NEW=/path/to/vigil])"; exit 2; }

T=$(mktemp -d /tmp/vigil-alertids.XXXXXX)
WT=""
cleanup() {
    if [ -n "$WT" ]; then git -C "$ROOT" worktree remove --force "$WT" 2>/dev/null || true; fi
    rm -rf "$T"
    git -C "$ROOT" worktree prune 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NEW=${NEW:-$ROOT/build-bench/vigil}
if [ ! -x "$NEW" ]; then
    echo "alert_ids: building $NEW (Release)"
    [ -f "$ROOT/build-bench/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$ROOT/build-bench" -j2 --target vigil >/dev/null
fi
if [ -z "${OLD:-}" ]; then
    commit=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}") || { echo "alert_ids: no such revision: $REV"; exit 2; }
    WT=$T/src
    echo "alert_ids: building $REV ($(git -C "$ROOT" log -1 --format='%h %s' "$commit" | cut -c1-70)) in $WT"
    git -C "$ROOT" worktree add --detach "$WT" "$commit" >/dev/null 2>&1
    cmake -S "$WT" -B "$WT/build" -DCMAKE_BUILD_TYPE=Release > "$T/old-build.log" 2>&1 &&
        cmake --build "$WT/build" -j2 --target vigil >> "$T/old-build.log" 2>&1 ||
        { echo "alert_ids: the build of $REV failed:"; tail -20 "$T/old-build.log"; exit 2; }
    OLD=$WT/build/vigil
fi

replay() {   # replay BINARY OUT
    "$1" replay --threads "$THREADS" --rules "$RULES" --input "tx=$TX" --input "report=$RP" \
        --time-field tx_datetime,report_datetime --id-field transaction_id,report_id --output "$2" 2> "$2.err" ||
        { echo "alert_ids: $1 replay failed:"; tail -5 "$2.err"; exit 2; }
    LC_ALL=C sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$2" | LC_ALL=C sort > "$2.ids"
    LC_ALL=C sed 's/"detected_at":"[^"]*",\{0,1\}//' "$2" | LC_ALL=C sort > "$2.lines"
}
echo "alert_ids: old $OLD"
echo "           new $NEW"
echo "           rules $RULES, replay --threads $THREADS, the card data (tx + reports)"
replay "$OLD" "$T/old.ndjson"
replay "$NEW" "$T/new.ndjson"
n_old=$(wc -l < "$T/old.ndjson"); n_new=$(wc -l < "$T/new.ndjson")
echo "alerts: old $n_old, new $n_new; distinct ids: old $(uniq "$T/old.ndjson.ids" | wc -l), new $(uniq "$T/new.ndjson.ids" | wc -l)"
[ "$n_old" -gt 0 ] || { echo "alert_ids: the old build raised no alert: nothing is proven"; exit 2; }
status=0
if cmp -s "$T/old.ndjson.ids" "$T/new.ndjson.ids"; then
    echo "alert ids: identical"
else
    status=1
    echo "alert ids: DIFFER (first differences, < old  > new):"
    diff "$T/old.ndjson.ids" "$T/new.ndjson.ids" | grep '^[<>]' | head -10 || true
fi
if cmp -s "$T/old.ndjson.lines" "$T/new.ndjson.lines"; then
    echo "alert lines without detected_at: identical"
else
    status=1
    echo "alert lines without detected_at: DIFFER (first differences, < old  > new; 300 characters each):"
    diff "$T/old.ndjson.lines" "$T/new.ndjson.lines" | grep '^[<>]' | head -6 | cut -c1-300 || true
fi
exit $status
