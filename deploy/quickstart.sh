#!/usr/bin/env bash
# quickstart.sh — the main job on one machine: install, build, start
# nats-server (JetStream on) and redis-server on loopback, a webhook
# receiver, `vigil serve` with rules/fraud (Redis state, NATS in and out,
# signed webhooks), and an endless generated card-transaction stream with
# the three fraud patterns fed over NATS. Prints the dashboard URL and runs
# until Ctrl-C, which stops what it started in order: the feed, then vigil
# (it drains and commits to Redis), then the receiver, nats-server and
# redis-server last.
#
# Run it again and it goes on where it stopped: Redis and the JetStream
# stream in .vigil/ keep the state and the watermark (the highest event time
# seen, stored with each offset), so the generated stream continues just
# after the stored watermark, with transaction ids never used before.
# Starting over at 2018-04-01 would make every event late (no alert, ever).
# To start clean instead: stop it and remove the run folder (.vigil/).
#
# Environment:
#   VIGIL_HTTP_PORT (8080)  first port tried for the dashboard/API; NATS,
#   Redis and the receiver try VIGIL_NATS_PORT (4222), VIGIL_REDIS_PORT
#   (6379), VIGIL_HOOK_PORT (9099); each takes the next free port.
#   VIGIL_RATE              generated events per second (300)
#   VIGIL_NO_BUILD=1        skip installing packages and building
#   VIGIL_BUILD_DIR         where vigil and webhook_receiver are (build/)
#   VIGIL_QUICKSTART_DIR    run folder: Redis, NATS, logs (.vigil/)
#   VIGIL_QUICKSTART_SECONDS=N  stop by itself after N seconds (tests,
#                           demos), after saving /metrics into the log folder
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ "${VIGIL_NO_BUILD:-0}" != 1 ]; then
    VIGIL_NO_BROWSER=1 bash scripts/deps.sh
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc)" --target vigil webhook_receiver
fi
BIN=${VIGIL_BUILD_DIR:-$ROOT/build}
RUN=${VIGIL_QUICKSTART_DIR:-$ROOT/.vigil}
SECONDS_TO_RUN=${VIGIL_QUICKSTART_SECONDS:-0}
PREFIX=vigil                    # vigil serve's default --redis-prefix
case $SECONDS_TO_RUN in ''|*[!0-9]*) echo "VIGIL_QUICKSTART_SECONDS must be a number of seconds" >&2; exit 2 ;; esac
for b in vigil webhook_receiver; do
    [ -x "$BIN/$b" ] || { echo "quickstart: no $BIN/$b (build it, or unset VIGIL_NO_BUILD)" >&2; exit 1; }
done
mkdir -p "$RUN/redis" "$RUN/nats" "$RUN/log"
RUN=$(cd "$RUN" && pwd)

log() { echo "quickstart: $*"; }
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while in_use "$p"; do p=$((p + 1)); done; echo "$p"; }
wait_port() { for _ in $(seq 1 100); do in_use "$1" && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
# http_get PORT PATH: the body of a GET on loopback (bash only: no curl needed)
http_get() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
        r=$(timeout 5 cat <&3) || exit 1
        printf '%s\n' "${r#*$'\r\n\r\n'}"
    )
}
# metric NAME: the sum of a counter's samples on /metrics (0 when absent)
metric() {
    { http_get "$HTTP_PORT" /metrics 2>/dev/null || true; } |
        awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }'
}

HTTP_PORT=$(free_port "${VIGIL_HTTP_PORT:-8080}")
NATS_PORT=$(free_port "${VIGIL_NATS_PORT:-4222}")
REDIS_PORT=$(free_port "${VIGIL_REDIS_PORT:-6379}")
HOOK_PORT=$(free_port "${VIGIL_HOOK_PORT:-9099}")
SECRET=${VIGIL_WEBHOOK_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}

# Each process runs in its own session (setsid), so Ctrl-C reaches only this
# script, and stop() ends them one by one: what feeds vigil first, vigil
# while Redis and NATS are still there to take its last commit, the servers
# last. Each gets SIGTERM and a bounded wait, then SIGKILL.
REDIS_PID="" NATS_PID="" HOOK_PID="" VIGIL_PID="" FEED_PID=""
stop_one() {   # NAME PID SECONDS [SIGNAL (TERM)]
    local name=$1 pid=$2 secs=$3 sig=${4:-TERM} rc=0
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop within ${secs} s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    log "stopped $name (exit $rc)"
}
stop() {
    trap - EXIT
    trap "" INT TERM   # the ordered stop is bounded: let it finish
    echo; log "stopping…"
    stop_one "the feed" "$FEED_PID" 5
    # let vigil take what is still in the stream before it stops, so that the
    # stored watermark is the stream's end (bounded: 10 s)
    if [ -n "$VIGIL_PID" ] && kill -0 "$VIGIL_PID" 2>/dev/null; then
        local before after
        before=$(metric vigil_events_processed_total)
        for _ in $(seq 1 20); do
            sleep 0.5
            after=$(metric vigil_events_processed_total)
            [ "$after" = "$before" ] && break
            before=$after
        done
    fi
    stop_one vigil "$VIGIL_PID" 30
    stop_one "the webhook receiver" "$HOOK_PID" 5
    stop_one nats-server "$NATS_PID" 10 INT   # its clean stop (SIGTERM exits 1)
    stop_one redis-server "$REDIS_PID" 10
}
trap stop EXIT
trap 'exit 130' INT TERM

setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always \
    --dir "$RUN/redis" >"$RUN/log/redis.log" 2>&1 &
REDIS_PID=$!
setsid nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$RUN/nats" >"$RUN/log/nats.log" 2>&1 &
NATS_PID=$!
setsid "$BIN/webhook_receiver" --port "$HOOK_PORT" --secret "$SECRET" --out "$RUN/webhooks.jsonl" >"$RUN/log/webhook.log" 2>&1 &
HOOK_PID=$!
wait_port "$REDIS_PORT"; wait_port "$NATS_PORT"; wait_port "$HOOK_PORT"
for _ in $(seq 1 100); do   # Redis answers LOADING while it reads its append-only file
    [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break
    sleep 0.1
done

# The stored watermark: the highest of the offsets
# <prefix>:{<group>:p<n>}:offset = "<stream seq> <watermark ms>".
WATERMARK=""
while IFS= read -r key; do
    [ -n "$key" ] || continue
    wm=$(redis-cli -p "$REDIS_PORT" --raw GET "$key" | awk 'NF == 2 && $2 ~ /^[0-9]+$/ { print $2 }')
    if [ -n "$wm" ] && { [ -z "$WATERMARK" ] || [ "$wm" -gt "$WATERMARK" ]; }; then WATERMARK=$wm; fi
done < <(redis-cli -p "$REDIS_PORT" --raw --scan --pattern "$PREFIX:*:offset")
GEN_ARGS=()
if [ -n "$WATERMARK" ] && [ "$WATERMARK" -gt 0 ]; then
    # Transaction ids continue from the first millisecond after the watermark:
    # the generator makes ~10,000 transactions per simulated day, far fewer
    # than one per millisecond of event time, so a run that ends at watermark
    # W' has used fewer ids than W' - W, and the next run's ids are all new
    # (JetStream's duplicate window and the alert ids would drop repeats).
    GEN_ARGS=(--start "$((WATERMARK + 1))" --first-id "$((WATERMARK + 1))")
    log "continuing the event stream after $(date -u -d "@$((WATERMARK / 1000))" +%Y-%m-%dT%H:%M:%SZ), the stored watermark (Redis $PREFIX:*:offset in $RUN/redis); remove $RUN to start clean"
else
    log "no stored watermark in Redis: the event stream starts at 2018-04-01T00:00:00Z"
fi

VIGIL_WEBHOOK_SECRET=$SECRET setsid "$BIN/vigil" serve --rules rules/fraud --listen "127.0.0.1:$HTTP_PORT" \
    --nats "nats://127.0.0.1:$NATS_PORT" --jetstream --redis "redis://127.0.0.1:$REDIS_PORT" \
    --data-dir "$RUN/data" --webhook "http://127.0.0.1:$HOOK_PORT/hook" \
    --time-field tx_datetime,report_datetime --id-field transaction_id,report_id \
    >"$RUN/log/vigil.log" 2>&1 &
VIGIL_PID=$!
wait_port "$HTTP_PORT"
setsid "$BIN/vigil" feed --gen "${GEN_ARGS[@]}" --rate "${VIGIL_RATE:-300}" --nats "nats://127.0.0.1:$NATS_PORT" \
    --jetstream >"$RUN/log/feed.log" 2>&1 &
FEED_PID=$!

if [ "$SECONDS_TO_RUN" -gt 0 ]; then ending="Stops by itself after $SECONDS_TO_RUN s."; else ending="Ctrl-C stops everything."; fi
cat <<MSG

  vigil is running.
    dashboard     http://127.0.0.1:$HTTP_PORT/
    metrics       http://127.0.0.1:$HTTP_PORT/metrics
    alerts API    http://127.0.0.1:$HTTP_PORT/v1/alerts
    NATS          nats://127.0.0.1:$NATS_PORT  (events: JetStream stream VIGIL_EVENTS; alerts on vigil.alerts.<rule>)
    Redis state   redis://127.0.0.1:$REDIS_PORT (keys $PREFIX:{customer_id:p<n>}:k:…, outbox stream $PREFIX:outbox)
    webhooks      signed deliveries logged to $RUN/webhooks.jsonl
    logs          $RUN/log/
  Feeding ${VIGIL_RATE:-300} generated events/s (vigil feed --gen). $ending

MSG

# Run until vigil or the feed ends, Ctrl-C, or the time is up.
start=$(date +%s)
while kill -0 "$VIGIL_PID" 2>/dev/null && kill -0 "$FEED_PID" 2>/dev/null; do
    if [ "$SECONDS_TO_RUN" -gt 0 ] && [ $(($(date +%s) - start)) -ge "$SECONDS_TO_RUN" ]; then
        http_get "$HTTP_PORT" /metrics >"$RUN/log/metrics.txt" 2>/dev/null || true
        log "ran $SECONDS_TO_RUN s: $(metric vigil_events_processed_total) events processed," \
            "$(metric vigil_events_late_total) late, $(metric vigil_alerts_total) alerts (metrics in $RUN/log/metrics.txt)"
        exit 0
    fi
    sleep 1
done
if ! kill -0 "$VIGIL_PID" 2>/dev/null; then
    log "vigil ended; its log ($RUN/log/vigil.log) ends with:"; tail -n 20 "$RUN/log/vigil.log" >&2
else
    log "the feed ended; its log ($RUN/log/feed.log) ends with:"; tail -n 20 "$RUN/log/feed.log" >&2
fi
exit 1
