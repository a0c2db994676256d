#!/usr/bin/env bash
# test_quickstart.sh — deploy/quickstart.sh works a second time (issue 10).
#
# The defect: a second run gave no alert, ever — Redis and the JetStream
# stream kept the old watermark while the generator started again at
# 2018-04-01, so every event was late. This runs the quickstart's main job
# twice on the same run folder (no install, no build: VIGIL_NO_BUILD=1; each
# run stops by itself after VIGIL_QUICKSTART_SECONDS) and checks, from the
# /metrics each run saves before it stops:
#  - run 1 starts the stream at the default and produces alerts;
#  - run 2 says it continues after the stored watermark, produces alerts,
#    and at most a tenth of its events are late (before the fix: all);
#  - both stop in order: the feed, vigil (exit 0), then the receiver,
#    nats-server and redis-server last.
# Needs nats-server and redis-server (scripts/deps.sh); not the shared data.
# Usage: test_quickstart.sh BUILD_DIR (where vigil and webhook_receiver are).
# Environment: QUICKSTART_TEST_SECONDS (20) per run.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:?usage: test_quickstart.sh BUILD_DIR}" && pwd)
SECS=${QUICKSTART_TEST_SECONDS:-20}
for tool in nats-server redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "test_quickstart: $tool is not installed (scripts/deps.sh)"; exit 1; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; failures=$((failures + 1)); }

# metric FILE NAME: sum of a metric's samples in a saved /metrics
metric() { awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' "$1"; }

# Ports away from the defaults, from other tests and from the kernel's
# ephemeral range (32768 and up: an outgoing connection may hold one), and
# free when picked (nothing answers on any of the four)
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 50); do
    base=$((20000 + RANDOM % 10000))
    port_free $base && port_free $((base + 10)) && port_free $((base + 20)) && port_free $((base + 30)) && break
done

run() {   # N: one run of the quickstart, its output in $TMP/out<N>
    local n=$1 rc=0
    rm -f "$TMP/run/log/metrics.txt"
    VIGIL_NO_BUILD=1 VIGIL_BUILD_DIR="$BUILD" VIGIL_QUICKSTART_DIR="$TMP/run" \
    VIGIL_QUICKSTART_SECONDS="$SECS" VIGIL_RATE=1000 \
    VIGIL_HTTP_PORT=$base VIGIL_NATS_PORT=$((base + 10)) VIGIL_REDIS_PORT=$((base + 20)) \
    VIGIL_HOOK_PORT=$((base + 30)) \
        timeout 200 bash "$REPO/deploy/quickstart.sh" >"$TMP/out$n" 2>&1 || rc=$?
    echo "---- run $n (exit $rc):"; grep '^quickstart:' "$TMP/out$n" | sed 's/^/     /'
    if [ "$rc" -ne 0 ]; then
        bad "run $n exits 0"; sed 's/^/     /' "$TMP/out$n"
        tail -n 20 "$TMP/run/log/vigil.log" 2>/dev/null | sed 's/^/     vigil.log: /'
        return 0
    fi
    ok "run $n exits 0"
    if [ -s "$TMP/run/log/metrics.txt" ]; then
        cp "$TMP/run/log/metrics.txt" "$TMP/metrics$n"
    else
        bad "run $n saved its /metrics"; : >"$TMP/metrics$n"
    fi
    # the stop order, as logged
    local order
    order=$(grep -o 'stopped [a-z -]*' "$TMP/out$n" | tr '\n' ',')
    if [ "$order" = "stopped the feed ,stopped vigil ,stopped the webhook receiver ,stopped nats-server ,stopped redis-server ," ]; then
        ok "run $n stops the feed, vigil, the receiver, nats-server, redis-server in that order"
    else
        bad "run $n stop order: $order"
    fi
    if grep -q 'stopped vigil (exit 0)' "$TMP/out$n"; then ok "run $n: vigil exits 0"; else bad "run $n: vigil exits 0"; fi
}

check_alerts() {   # N
    local m=$TMP/metrics$1 alerts processed late
    alerts=$(metric "$m" vigil_alerts_total)
    processed=$(metric "$m" vigil_events_processed_total)
    late=$(metric "$m" vigil_events_late_total)
    echo "     run $1: $processed events processed, $late late, $alerts alerts"
    if [ "$alerts" -gt 0 ]; then ok "run $1 produces alerts ($alerts)"; else bad "run $1 produces alerts (0)"; fi
    if [ "$processed" -gt 0 ] && [ $((late * 10)) -le "$processed" ]; then
        ok "run $1: at most a tenth of the events late ($late of $processed)"
    else
        bad "run $1: at most a tenth of the events late ($late of $processed)"
    fi
}

run 1
if grep -q 'no stored watermark in Redis' "$TMP/out1"; then ok "run 1 starts at the default"; else bad "run 1 starts at the default"; fi
[ -s "$TMP/metrics1" ] && check_alerts 1
run 2
if grep -q 'continuing the event stream after 20[0-9-]*T[0-9:]*Z, the stored watermark' "$TMP/out2"; then
    ok "run 2 continues after the stored watermark"
else
    bad "run 2 continues after the stored watermark"
fi
[ -s "$TMP/metrics2" ] && check_alerts 2

if [ "$failures" -ne 0 ]; then
    echo "test_quickstart: $failures check(s) failed (run folder logs above)"
    exit 1
fi
echo "test_quickstart: the quickstart works twice"
