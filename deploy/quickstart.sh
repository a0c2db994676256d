#!/usr/bin/env bash
# quickstart.sh — the main job on one machine: install, build, start
# nats-server (JetStream on) and redis-server on loopback, a webhook
# receiver, `vigil serve` with rules/fraud (Redis state, NATS in and out,
# signed webhooks), and an endless generated card-transaction stream with
# the three fraud patterns fed over NATS. Prints the dashboard URL and runs
# until Ctrl-C, which stops everything it started.
# Environment: VIGIL_HTTP_PORT (8080), VIGIL_RATE (events/s, 300),
# VIGIL_NO_BUILD=1 to skip the build.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ "${VIGIL_NO_BUILD:-0}" != 1 ]; then
    VIGIL_NO_BROWSER=1 bash scripts/deps.sh
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc)" --target vigil webhook_receiver
fi
BIN=$ROOT/build
RUN=$ROOT/.vigil
mkdir -p "$RUN/redis" "$RUN/nats" "$RUN/log"

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while in_use "$p"; do p=$((p + 1)); done; echo "$p"; }
wait_port() { for _ in $(seq 1 100); do in_use "$1" && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

HTTP_PORT=$(free_port "${VIGIL_HTTP_PORT:-8080}")
NATS_PORT=$(free_port 4222)
REDIS_PORT=$(free_port 6379)
HOOK_PORT=$(free_port 9099)
SECRET=${VIGIL_WEBHOOK_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}

PIDS=()
stop() {
    echo; echo "stopping…"
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always \
    --dir "$RUN/redis" >"$RUN/log/redis.log" 2>&1 &
PIDS+=($!)
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$RUN/nats" >"$RUN/log/nats.log" 2>&1 &
PIDS+=($!)
"$BIN/webhook_receiver" --port "$HOOK_PORT" --secret "$SECRET" --out "$RUN/webhooks.jsonl" >"$RUN/log/webhook.log" 2>&1 &
PIDS+=($!)
wait_port "$REDIS_PORT"; wait_port "$NATS_PORT"; wait_port "$HOOK_PORT"

VIGIL_WEBHOOK_SECRET=$SECRET "$BIN/vigil" serve --rules rules/fraud --listen "127.0.0.1:$HTTP_PORT" \
    --nats "nats://127.0.0.1:$NATS_PORT" --jetstream --redis "redis://127.0.0.1:$REDIS_PORT" \
    --data-dir "$RUN/data" --webhook "http://127.0.0.1:$HOOK_PORT/hook" \
    --time-field tx_datetime,report_datetime --id-field transaction_id,report_id \
    >"$RUN/log/vigil.log" 2>&1 &
PIDS+=($!)
wait_port "$HTTP_PORT"
"$BIN/vigil" feed --gen --rate "${VIGIL_RATE:-300}" --nats "nats://127.0.0.1:$NATS_PORT" --jetstream >"$RUN/log/feed.log" 2>&1 &
PIDS+=($!)

cat <<MSG

  vigil is running.
    dashboard     http://127.0.0.1:$HTTP_PORT/
    metrics       http://127.0.0.1:$HTTP_PORT/metrics
    alerts API    http://127.0.0.1:$HTTP_PORT/v1/alerts
    NATS          nats://127.0.0.1:$NATS_PORT  (events: JetStream stream VIGIL_EVENTS; alerts on vigil.alerts.<rule>)
    Redis state   redis://127.0.0.1:$REDIS_PORT (keys vigil:{customer_id:p<n>}:k:…, outbox stream vigil:outbox)
    webhooks      signed deliveries logged to $RUN/webhooks.jsonl
    logs          $RUN/log/
  Feeding ${VIGIL_RATE:-300} generated events/s (vigil feed --gen). Ctrl-C stops everything.

MSG
wait "${PIDS[3]}"
