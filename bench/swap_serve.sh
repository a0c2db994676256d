#!/usr/bin/env bash
# swap_serve.sh — rule hot reload in `vigil serve` (issue 11): the same
# synthetic card stream posted over HTTP with no rule change, and with 10
# PUTs of one rule during the feed (alternately a compatible change — the
# threshold — and an incompatible one — its `where`), side by side, in
# alternating rounds. Reports events/s of each run (from the first POST to
# the last event processed, as vigil's own /metrics counts them), the ratio,
# and the workers' swap pause from /metrics
# (vigil_rule_swap_pause_max_seconds, vigil_rule_swap_pause_seconds_total /
# vigil_rule_swaps_total), and how long each PUT took to answer (it waits
# for every worker to reach its marker). The engine-only cost per key is
# bench/swap.c.
#
#   cmake --build build -j2 && bash bench/swap_serve.sh          # ~2 min
#   EVENTS=400000 ROUNDS=3 bash bench/swap_serve.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGIL=${VIGIL:-$ROOT/build/vigil}
EVENTS=${EVENTS:-300000}
ROUNDS=${ROUNDS:-2}
SWAPS=10
PORT=${PORT:-18181}
WORK=$(mktemp -d /tmp/vigil-swap.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
[ -x "$VIGIL" ] || { echo "swap_serve: build first (cmake --build build)"; exit 1; }

mkdir -p "$WORK/rules"
cp "$ROOT"/rules/fraud/*.lua "$WORK/rules/"
changed() {   # $1: step (odd: threshold only; even: the where too)
    local where="type = \"tx\""
    [ $(( ($1 / 2) % 2 )) -eq 1 ] && where="type = \"tx\", tx_amount = ge(0)"
    printf 'rule { name = "vel_changed", key = "customer_id", where = { %s }, window = sliding("1h"), when = ge(count(), %d) }\n' \
        "$where" $(( 20 + $1 % 2 ))
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

run() {   # $1: swaps (0 or 10); prints "events/s pause_max_s pause_total_s swaps"
    changed 0 > "$WORK/rules/vel_changed.lua"
    "$VIGIL" serve --rules "$WORK/rules" --listen "127.0.0.1:$PORT" --data-dir "" --workers 2 \
        --time-field tx_datetime,report_datetime --id-field transaction_id,report_id > "$WORK/serve.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    local t0; t0=$(date +%s.%N)
    "$VIGIL" feed --gen --count "$EVENTS" --seed 7 --http "http://127.0.0.1:$PORT/v1/events" > "$WORK/feed.log" 2>&1 &
    local feed=$! k=1
    while :; do
        local done_n; done_n=$(metric vigil_events_processed_total); done_n=${done_n:-0}
        if [ "$1" -gt 0 ] && [ $k -le "$SWAPS" ] && [ "${done_n%.*}" -ge $(( EVENTS * k / (SWAPS + 1) )) ]; then
            changed $k | curl -sf -o /dev/null -w "%{time_total}\n" -X PUT --data-binary @- "http://127.0.0.1:$PORT/v1/rules/vel_changed" >> "$WORK/put_times"
            k=$((k + 1))
        fi
        # the feed done, then the queues drained: processed stops moving
        if ! kill -0 $feed 2>/dev/null; then
            local q1 q2; q1=$(metric vigil_events_processed_total); sleep 0.2; q2=$(metric vigil_events_processed_total)
            [ "$q1" = "$q2" ] && break
        fi
        sleep 0.02
    done
    local t1; t1=$(date +%s.%N)
    local processed pmax ptot nsw
    processed=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1 ~ /^vigil_events_received_total/ {s += $2} END {print s}')
    pmax=$(metric vigil_rule_swap_pause_max_seconds); ptot=$(metric vigil_rule_swap_pause_seconds_total)
    nsw=$(metric vigil_rule_swaps_total)
    kill -TERM $pid; wait $pid 2>/dev/null || true
    awk -v n="$processed" -v a="$t0" -v b="$t1" -v m="$pmax" -v t="$ptot" -v s="$nsw" \
        'BEGIN {printf "%.0f %s %s %s\n", n / (b - a), m, t, s}'
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); date $(date -u +%Y-%m-%dT%H:%MZ); commit $(git -C "$ROOT" rev-parse --short HEAD)"
echo "stream: vigil feed --gen --count $EVENTS over HTTP; rules/fraud + vel_changed; 2 workers, memory store"
for r in $(seq "$ROUNDS"); do
    read -r none _ _ _ < <(run 0)
    read -r with pmax ptot nsw < <(run $SWAPS)
    awk -v r="$r" -v a="$none" -v b="$with" -v m="$pmax" -v t="$ptot" -v s="$nsw" 'BEGIN {
        printf "round %d: no change %d events/s; %d PUTs %d events/s: ratio %.3f; worker swaps %d, pause max %.0f µs, mean %.0f µs\n",
               r, a, 10, b, b / a, s, m * 1e6, (s > 0 ? t / s * 1e6 : 0) }'
    sort -n "$WORK/put_times" | awk '{v[NR] = $1} END {if (NR) printf "  PUT answered in: median %.1f ms, max %.1f ms\n", v[int((NR + 1) / 2)] * 1e3, v[NR] * 1e3}'
    rm -f "$WORK/put_times"
done
