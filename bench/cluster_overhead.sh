#!/usr/bin/env bash
# cluster_overhead.sh — what cluster mode costs per instance (issue 14:
# "the per-instance overhead of 1, 2 and 3 instances on this 2-core machine;
# absolute speedup cannot show on 2 cores").
#
# One nats-server -js and one redis-server on loopback; the first EVENTS
# transactions of the card data published to the raw stream (vigil feed
# --jetstream) while nothing consumes; then, per mode, fresh streams and a
# fresh Redis database, the servers started and timed until they processed
# every (event, key group) delivery of the feed (vigil_events_processed_total
# summed over the instances):
#
#   single    one `vigil serve --jetstream --redis` (no cluster: one durable
#             consumer, one engine per worker) — the reference
#   cluster1  one instance in cluster mode (re-keying stage, keyed stream,
#             a consumer and an engine per pair, fenced commits)
#   cluster2  two instances, cluster3  three instances
#
# Reported per mode: the wall time from start to the last delivery, events/s,
# and the CPU time of all vigil processes per event (user + system from
# /proc, over the run) with its ratio to `single`: on a 2-core machine the
# CPU per event is the overhead; wall time cannot drop with more instances.
#
#   bash bench/cluster_overhead.sh                 # EVENTS=100000 ROUNDS=2
#   EVENTS=200000 ROUNDS=3 MODES="single cluster3" bash bench/cluster_overhead.sh
#
# Needs ../shared/data, build/vigil, nats-server, redis-server. Every
# process it started and its scratch directory are removed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
EVENTS=${EVENTS:-100000}
ROUNDS=${ROUNDS:-2}
MODES=${MODES:-"single cluster1 cluster2 cluster3"}
PARTITIONS=${PARTITIONS:-8}
VIGIL=$BUILD/vigil
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
[ -x "$VIGIL" ] || { echo "cluster_overhead: build first: cmake --build build" >&2; exit 2; }
[ -f "$TX" ] || { echo "cluster_overhead: the card data is not at $TX" >&2; exit 2; }
TMP=$(mktemp -d /tmp/vigil-cluster-bench-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
[ "${KEEP:-0}" = 1 ] && trap - EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() {   # utime + stime of the pids, in clock ticks
    local t=0 p
    for p in "$@"; do
        [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat)))
    done
    echo $t
}
HZ=$(getconf CLK_TCK)

NATS_PORT=$(free_port); REDIS_PORT=$(free_port)
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$TMP/nats" > "$TMP/nats.log" 2>&1 & PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" > "$TMP/redis.log" 2>&1 & PIDS+=($!)
sleep 1
NATS=nats://127.0.0.1:$NATS_PORT
REDIS=redis://127.0.0.1:$REDIS_PORT

# the slice, once
{ zcat "$TX" | head -n $((EVENTS + 1)); } > "$TMP/slice.csv" || true
EVOPTS=(--time-field tx_datetime --id-field transaction_id)

metric_sum() {   # the sum of a metric over the given HTTP bases
    local name=$1 total=0 b v
    shift
    for b in "$@"; do
        v=$(curl -s --max-time 2 "$b/metrics" | awk -v n="$name" '$1 == n {print $2}')
        total=$(python3 -c "print(int(float('${v:-0}')) + $total)")
    done
    echo "$total"
}

run_mode() {   # mode round -> "secs cpu_s"
    local mode=$1 round=$2 n=0 cluster=0
    case $mode in single) n=1 ;; cluster1) n=1; cluster=1 ;; cluster2) n=2; cluster=1 ;; cluster3) n=3; cluster=1 ;; esac
    # fresh streams (the raw one re-fed) and a fresh Redis database
    redis-cli -p "$REDIS_PORT" flushall > /dev/null
    rm -rf "$TMP/nats-run"; kill -9 "${PIDS[0]}" 2>/dev/null || true; wait "${PIDS[0]}" 2>/dev/null || true
    nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$TMP/nats-run" > "$TMP/nats.log" 2>&1 & PIDS[0]=$!
    for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$NATS_PORT) 2>/dev/null && break; sleep 0.1; done
    "$VIGIL" feed --input "tx=$TMP/slice.csv" --nats "$NATS" --jetstream "${EVOPTS[@]}" > "$TMP/feed.log" 2>&1
    local bases=() vpids=() i
    local t0; t0=$(date +%s.%N)
    for i in $(seq "$n"); do
        local port; port=$(free_port)
        local conf="$TMP/$mode-$i.lua"
        if [ "$cluster" = 1 ]; then
            echo "return { partitions = $PARTITIONS, cluster = { instance = \"b$i\", lease = \"3s\", heartbeat = \"1s\" } }" > "$conf"
        else
            echo "return { partitions = $PARTITIONS }" > "$conf"
        fi
        "$VIGIL" serve --config "$conf" --rules "$ROOT/rules/fraud" --listen "127.0.0.1:$port" --nats "$NATS" --jetstream \
            --redis "$REDIS" "${EVOPTS[@]}" --data-dir "" --idle-timeout 0 --workers 2 > "$TMP/$mode-$round-$i.log" 2>&1 &
        vpids+=($!); PIDS+=($!)
        bases+=("http://127.0.0.1:$port")
    done
    local want=$((EVENTS * 2)) got=0 deadline=$(( $(date +%s) + 300 ))
    while [ "$got" -lt "$want" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.2
        got=$(metric_sum vigil_events_processed_total "${bases[@]}")
    done
    local t1; t1=$(date +%s.%N)
    local ticks; ticks=$(cpu_ticks "${vpids[@]}")
    # Redis after the run: keys (state, offsets, epochs, outboxes) and memory, for sizing
    local keys mem
    keys=$(redis-cli -p "$REDIS_PORT" dbsize)
    mem=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
    echo "round $round $mode: Redis holds $keys keys in $mem bytes ($((mem / (keys > 0 ? keys : 1))) bytes a key)" >&2
    for p in "${vpids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${vpids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$got" -lt "$want" ]; then echo "cluster_overhead: $mode processed $got of $want deliveries" >&2; fi
    python3 -c "print('%.3f %.3f %d' % ($t1 - $t0, $ticks / $HZ, $got))" > "$TMP/result"
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$ROOT" rev-parse --short HEAD); $(nproc) cores; load $(cut -d' ' -f1 /proc/loadavg)"
echo "events: $EVENTS transactions (x2 key groups), P = $PARTITIONS, $ROUNDS rounds"
declare -A SECS CPU
for r in $(seq "$ROUNDS"); do
    for m in $MODES; do
        run_mode "$m" "$r"   # not in a subshell: it restarts nats-server (PIDS[0])
        read -r s c g < "$TMP/result"
        echo "round $r $m: ${s}s wall, ${c}s CPU, $g deliveries"
        SECS[$m]="${SECS[$m]:-} $s"; CPU[$m]="${CPU[$m]:-} $c"
    done
done
python3 - "$EVENTS" "$MODES" <<EOF
import statistics, sys
events = int(sys.argv[1]); modes = sys.argv[2].split()
secs = {$(for m in $MODES; do printf "'%s': [%s], " "$m" "$(echo ${SECS[$m]} | tr ' ' ',')"; done)}
cpu = {$(for m in $MODES; do printf "'%s': [%s], " "$m" "$(echo ${CPU[$m]} | tr ' ' ',')"; done)}
base = statistics.median(cpu[modes[0]]) / events
print()
print("| mode | wall s (median) | events/s | vigil CPU µs/event | vs %s |" % modes[0])
print("|---|---:|---:|---:|---:|")
for m in modes:
    s = statistics.median(secs[m]); c = statistics.median(cpu[m]) / events
    print("| %s | %.2f | %s | %.1f | %.0f %% |" % (m, s, format(int(events / s), ","), c * 1e6, 100 * c / base))
EOF
