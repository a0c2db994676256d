#!/usr/bin/env bash
# durable.sh — the ingest benchmarks of issue 4, each pair side by side in
# one run on this machine, nats-server and redis-server on loopback:
#
#   js       JetStream → engine → Redis commit (rules/fraud, the card data)
#            vs a bare pull consumer that only fetches and acks (bench_js_bare)
#            over the same stream; plus Redis round trips per 1000 events.
#   core     core NATS → engine, memory store without snapshots (--data-dir "")
#            [and with snapshots: core_snap] vs a bare subscriber that counts
#            (bench_core_bare); the same publisher (bench_nats_pub) for both.
#   http     POST /v1/events, NDJSON batches of 1000 and single events, vs a
#            libmicrohttpd handler that does nothing (bench_mhd_null); load
#            generator wrk (one thread, a Lua script: bench/http_post.lua).
#   latency  event → webhook request at a steady LAT_RATE events/s (paced
#            bench_nats_pub stamping each event with its send time; the real
#            tests/tools/webhook_receiver, whose log line carries received_us;
#            bench/webhook_latency.py), per variant of LAT_MODES:
#              core-mem       core NATS, memory store, --data-dir "" (nothing
#                             durable: the in-memory webhook sender)
#              core-memdir    core NATS, memory store with snapshots (the
#                             outbox file + dispatcher)
#              core-redis     core NATS, Redis store (Redis outbox + dispatcher)
#              js-redis       JetStream, Redis store (durable end to end)
#              js-redis-b100  the same with --fetch-batch 100
#              js-memdir      JetStream, memory store with snapshots
#   js_aof   the js pair again with Redis appendonly yes + appendfsync always.
#   lowrate  Redis commits at the quickstart's rate (issue 16): JetStream +
#            Redis, LOW_RATE events/s (300) for LOW_SECS s (15); the delta
#            of vigil_state_commits_total over the run, per second per
#            worker and per event.
#
# Builds what is missing (cmake --build build-bench), starts nats-server -js
# and redis-server on free loopback ports in a temporary directory, runs each
# pair RUNS times (alternating bare and vigil), prints a table and removes
# every process it started and the temporary directory (trap).
#
#   bash bench/durable.sh                       # everything, ~10 min on the 2-core VM
#   PHASES="js core" RUNS=3 bash bench/durable.sh
#   EVENTS=600000 LAT_SECS=20 LAT_MODES="core-mem" bash bench/durable.sh
#
# Needs ../shared/data (the card data: read in place, never copied into the
# project), nats-server, redis-server, python3, and wrk for the http phase
# (Debian package wrk: installed with apt-get when missing and we are root,
# else the phase is skipped with a message).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
BUILD=${BUILD:-$ROOT/build-bench}
RUNS=${RUNS:-2}
PHASES=${PHASES:-"js core http latency js_aof"}
EVENTS=${EVENTS:-0}                 # events of the card data to use; 0 = all (1,179,188)
CORE_WINDOW=${CORE_WINDOW:-100000}  # publisher at most this many events ahead of the consumer
HTTP_SECS=${HTTP_SECS:-3}           # per wrk run (batches: shorter than one pass over the data)
HTTP_BATCH_CONNS=${HTTP_BATCH_CONNS:-4}
HTTP_SINGLE_CONNS=${HTTP_SINGLE_CONNS:-16}
LAT_RATE=${LAT_RATE:-20000}
LAT_SECS=${LAT_SECS:-30}
LAT_MODES=${LAT_MODES:-"core-mem core-memdir core-redis js-redis js-redis-b100"}
KEEP_LOGS=${KEEP_LOGS:-0}
LOW_RATE=${LOW_RATE:-300}
LOW_SECS=${LOW_SECS:-15}
WORKERS=${WORKERS:-2}
RESULTS_OUT=${RESULTS_OUT:-}        # copy the "key value" results there (bench/targets.sh reads them)
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
RP=$DATA/fdh-fraud-reports-2018-04-to-07.csv.gz
EVOPTS=(--time-field tx_datetime,report_datetime --id-field transaction_id,report_id)
INPUTS=(--input "tx=$TX" --input "report=$RP")
VIGIL=$BUILD/vigil
RECEIVER=${RECEIVER:-$BUILD/webhook_receiver}

[ -f "$TX" ] && [ -f "$RP" ] || { echo "durable: the card data is not in $DATA (set VIGIL_DATA_DIR)"; exit 1; }
for c in nats-server redis-server redis-cli python3 curl; do
    command -v "$c" >/dev/null || { echo "durable: $c not found (bash scripts/deps.sh installs it)"; exit 1; }
done
TOOLS=(vigil webhook_receiver bench_nats_pub bench_core_bare bench_js_bare bench_mhd_null bench_metrics_wait)
need_build=0
for t in "${TOOLS[@]}"; do [ -x "$BUILD/$t" ] || need_build=1; done
if [ "$need_build" = 1 ] || [ "${REBUILD:-0}" = 1 ]; then
    echo "durable: building in $BUILD"
    [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target "${TOOLS[@]}" >/dev/null
fi
if [[ " $PHASES " == *" http "* ]] && ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "durable: wrk (HTTP load generator) is missing: apt-get install wrk"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } ||
            echo "durable: could not install wrk"
    fi
    command -v wrk >/dev/null || { echo "durable: wrk not found (Debian: apt-get install wrk); skipping the http phase"; PHASES=${PHASES//http/}; }
fi

T=$(mktemp -d /tmp/vigil-durable.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$KEEP_LOGS" = 1 ]; then
        rm -rf "$T/js" "$T/redis" "$T/data" "$T"/*.ndjson
        echo "durable: logs kept in $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rget() { awk -v k="$2" '$1 == "RESULT" && $2 == k {v = $3} END {print (v == "" ? "nan" : v)}' "$1"; }
res() { echo "$1 $2" >> "$T/results"; }
metric() { curl -s --noproxy '*' "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k {print $2}'; }
stop() {   # stop one process we started, wait for it
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
wait_http() {   # wait_http PORT: until /healthz answers (10 s)
    for _ in $(seq 1 200); do
        curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$1/healthz" && return 0
        sleep 0.05
    done
    echo "durable: vigil on port $1 did not come up"; return 1
}
wait_ready() {   # wait_ready PORT: until /readyz says ready (NATS, JetStream, Redis up; 10 s)
    for _ in $(seq 1 200); do
        curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$1/readyz" && return 0
        sleep 0.05
    done
    echo "durable: vigil on port $1 not ready"; return 1
}
wait_port() {   # wait_port FILE: the "PORT n" line a tool prints
    for _ in $(seq 1 100); do
        grep -q '^PORT ' "$1" 2>/dev/null && { awk '/^PORT /{print $2; exit}' "$1"; return 0; }
        sleep 0.05
    done
    return 1
}

NATS_PORT=$(freeport)
REDIS_PORT=$(freeport)
NATS=nats://127.0.0.1:$NATS_PORT
REDIS=redis://127.0.0.1:$REDIS_PORT
mkdir -p "$T/js" "$T/redis" "$T/data"
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$T/js" > "$T/nats-server.log" 2>&1 &
PIDS+=($!)
start_redis() {   # start_redis [extra redis-server args]
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --dir "$T/redis" "$@" > "$T/redis-server.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "durable: redis-server did not start"; return 1
}
start_redis --appendonly no
for _ in $(seq 1 100); do grep -q 'Server is ready' "$T/nats-server.log" && break; sleep 0.05; done

# vigil serve in the tmp dir (no stray ./vigil-data); sets VPID and VPORT
start_vigil() {
    VPORT=$(freeport)
    (cd "$T" && exec "$VIGIL" serve --rules "$ROOT/rules/fraud" "${EVOPTS[@]}" --workers "$WORKERS" \
        --listen "127.0.0.1:$VPORT" "$@") > "$T/vigil-$LOGTAG.log" 2>&1 &
    VPID=$!
    PIDS+=("$VPID")
}

stop_vigil() {   # stop the vigil started last; say so if it died on its own
    if ! kill -0 "$VPID" 2>/dev/null; then
        echo "durable: vigil ($LOGTAG) had died: $(tail -2 "$T/vigil-$LOGTAG.log" | tr '\n' ' ')"
    fi
    stop "$VPID"
}

COUNT_OPT=()
N=$EVENTS
if [ "$EVENTS" != 0 ]; then COUNT_OPT=(--count "$EVENTS")
else N=$(( $(zcat "$TX" | wc -l) - 1 + $(zcat "$RP" | wc -l) - 1 )); fi
RCV_NATS='vigil_events_received_total{source="nats"}'
RCV_HTTP='vigil_events_received_total{source="http"}'

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- cli server engine lua 2>/dev/null || echo ' + uncommitted cli/server/engine/lua changes')"
echo "servers: $(nats-server --version), $(redis-server --version | awk '{print $1, $2, $3}'); nats $NATS, redis $REDIS; tmp $T"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
echo

# ---- js: JetStream → engine → Redis vs a bare pull consumer ---------------------------------
js_pair() {   # js_pair TAG (results keyed TAG_<run>_…)
    local tag=$1 r t0 t1
    for r in $(seq 1 "$RUNS"); do
        LOGTAG="$tag-bare-$r"
        t0=$(now)
        "$BUILD/bench_js_bare" --nats "$NATS" --consumer "bare_${tag}_$r" > "$T/$LOGTAG.out" 2> "$T/$LOGTAG.err"
        t1=$(now)
        local n; n=$(rget "$T/$LOGTAG.out" messages)
        res "${tag}_${r}_bare_eps" "$(awk -v n="$n" -v s="$(echo "$t1 - $t0" | bc)" 'BEGIN {printf "%.0f", n / s}')"
        res "${tag}_${r}_bare_inner_eps" "$(rget "$T/$LOGTAG.out" eps)"
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        LOGTAG="$tag-vigil-$r"
        start_vigil --nats "$NATS" --jetstream --consumer "vigil_${tag}_$r" --redis "$REDIS" --data-dir ""
        "$BUILD/bench_metrics_wait" --url "http://127.0.0.1:$VPORT/metrics" \
            --metric 'vigil_jetstream_messages_total{outcome="acked"}' --count "$STREAM_MSGS" \
            --report vigil_redis_round_trips_total --report vigil_events_processed_total \
            --report "$RCV_NATS" --report vigil_commit_seconds_sum \
            --report vigil_commit_seconds_count --report vigil_events_late_total > "$T/$LOGTAG.out" || true
        stop_vigil
        local f="$T/$LOGTAG.out" done idle
        done=$(rget "$f" done_secs); idle=$(rget "$f" idle_secs)
        res "${tag}_${r}_vigil_eps" "$(awk -v n="$STREAM_MSGS" -v s="$done" 'BEGIN {printf "%.0f", n / s}')"
        res "${tag}_${r}_vigil_idle_s" "$idle"   # last scrape with nothing acked yet
        res "${tag}_${r}_rt_per_1000" "$(awk -v rt="$(rget "$f" vigil_redis_round_trips_total)" -v n="$STREAM_MSGS" 'BEGIN {printf "%.2f", 1000 * rt / n}')"
        res "${tag}_${r}_commit_ms" "$(awk -v s="$(rget "$f" vigil_commit_seconds_sum)" -v c="$(rget "$f" vigil_commit_seconds_count)" 'BEGIN {printf "%.1f", c ? 1000 * s / c : 0}')"
        res "${tag}_${r}_items_per_commit" "$(awk -v p="$(rget "$f" vigil_events_processed_total)" -v c="$(rget "$f" vigil_commit_seconds_count)" 'BEGIN {printf "%.0f", c ? p / c : 0}')"
        echo "  $tag run $r: bare $(grep "^${tag}_${r}_bare_eps" "$T/results" | cut -d' ' -f2) msg/s, vigil $(grep "^${tag}_${r}_vigil_eps" "$T/results" | cut -d' ' -f2) events/s (load $(cut -d' ' -f1 /proc/loadavg))"
    done
}

if [[ " $PHASES " == *" js "* || " $PHASES " == *" js_aof "* ]]; then
    echo "js: filling stream VIGIL_EVENTS with vigil feed --jetstream"
    "$VIGIL" feed --nats "$NATS" --jetstream "${INPUTS[@]}" "${EVOPTS[@]}" > "$T/feed.log" 2>&1 ||
        { tail -3 "$T/feed.log"; exit 1; }
    STREAM_MSGS=$(sed -n 's/.*: \([0-9]*\) stored.*/\1/p' "$T/feed.log" | tail -1)
    if [ "$EVENTS" != 0 ] && [ "$EVENTS" -lt "$STREAM_MSGS" ]; then
        echo "durable: note: vigil feed has no --count; the stream holds all $STREAM_MSGS events"
    fi
    res js_events "$STREAM_MSGS"
    res js_fill_eps "$(sed -n 's/.*events in .* s (\([0-9]*\)\/s).*/\1/p' "$T/feed.log" | tail -1)"
    echo "  $STREAM_MSGS messages ($(grep -o 'events in [0-9.]* s' "$T/feed.log"))"
fi
if [[ " $PHASES " == *" js "* ]]; then echo "js: appendonly no"; js_pair js; fi

# ---- core: core NATS → engine (memory store) vs a bare subscriber ---------------------------
if [[ " $PHASES " == *" core "* ]]; then
    echo "core: core NATS, subject bench.core.>, publisher window $CORE_WINDOW"
    for r in $(seq 1 "$RUNS"); do
        LOGTAG="core-bare-$r"
        n=$N
        "$BUILD/bench_core_bare" --nats "$NATS" --subject 'bench.core.>' --count "$n" > "$T/$LOGTAG.sub" 2> "$T/$LOGTAG.err" &
        bp=$!
        PIDS+=("$bp")
        for _ in $(seq 1 100); do grep -q READY "$T/$LOGTAG.sub" && break; sleep 0.05; done
        "$BUILD/bench_nats_pub" --nats "$NATS" --subject-prefix bench.core "${INPUTS[@]}" "${EVOPTS[@]}" "${COUNT_OPT[@]}" \
            --window "$CORE_WINDOW" --progress-nats bench.progress --done-count "$n" > "$T/$LOGTAG.out" 2>> "$T/$LOGTAG.err"
        wait "$bp" || true
        res "core_${r}_bare_eps" "$(rget "$T/$LOGTAG.out" done_eps)"
        res "core_${r}_bare_pub_eps" "$(rget "$T/$LOGTAG.out" pub_eps)"
        res "core_${r}_bare_dropped" "$(rget "$T/$LOGTAG.sub" dropped)"
        res "core_${r}_bare_msgs" "$(rget "$T/$LOGTAG.sub" messages)"
        for v in core core_snap; do
            if [ "$v" = core_snap ] && [ "${CORE_SNAP:-1}" != 1 ]; then continue; fi
            LOGTAG="$v-vigil-$r"
            dd=""
            [ "$v" = core_snap ] && { rm -rf "$T/data"; mkdir -p "$T/data"; dd="$T/data"; }
            start_vigil --nats "$NATS" --subject 'bench.core.>' --data-dir "$dd"
            wait_http "$VPORT"
            "$BUILD/bench_nats_pub" --nats "$NATS" --subject-prefix bench.core "${INPUTS[@]}" "${EVOPTS[@]}" "${COUNT_OPT[@]}" \
                --window "$CORE_WINDOW" --progress-http "http://127.0.0.1:$VPORT/metrics" \
                --progress-metric "$RCV_NATS" \
                --done-metric vigil_events_processed_total --done-count $((2 * n)) > "$T/$LOGTAG.out" 2> "$T/$LOGTAG.err" || true
            res "${v}_${r}_vigil_eps" "$(rget "$T/$LOGTAG.out" done_eps)"
            res "${v}_${r}_vigil_received" "$(metric "$VPORT" "$RCV_NATS")"
            res "${v}_${r}_vigil_processed" "$(metric "$VPORT" vigil_events_processed_total)"
            res "${v}_${r}_vigil_rejected" "$(curl -s --noproxy '*' "http://127.0.0.1:$VPORT/metrics" | awk '$1 ~ /^vigil_events_rejected_total/ {s += $2} END {print s + 0}')"
            res "${v}_${r}_snapshots" "$(metric "$VPORT" vigil_snapshots_total)"
            res "${v}_${r}_items_per_batch" "$(awk -v p="$(metric "$VPORT" vigil_events_processed_total)" -v c="$(metric "$VPORT" vigil_state_commits_total)" 'BEGIN {printf "%.1f", c ? p / c : 0}')"
            stop_vigil
            echo "  $v run $r: bare $(rget "$T/core-bare-$r.out" done_eps) events/s (dropped $(rget "$T/core-bare-$r.sub" dropped)), vigil $(rget "$T/$LOGTAG.out" done_eps) events/s (load $(cut -d' ' -f1 /proc/loadavg))"
        done
    done
    res core_events "$n"
fi

# ---- http: POST /v1/events vs a do-nothing libmicrohttpd handler ----------------------------
if [[ " $PHASES " == *" http "* ]]; then
    echo "http: wrk -t1, batches of 1000 (-c$HTTP_BATCH_CONNS) and single events (-c$HTTP_SINGLE_CONNS), ${HTTP_SECS}s each"
    "$BUILD/bench_nats_pub" --dump "$T/events.ndjson" "${INPUTS[@]}" "${EVOPTS[@]}" "${COUNT_OPT[@]}" > /dev/null 2>&1
    LUA=$ROOT/bench/http_post.lua
    for r in $(seq 1 "$RUNS"); do
        LOGTAG="http-null-$r"
        "$BUILD/bench_mhd_null" > "$T/$LOGTAG.port" 2>&1 &
        np=$!
        PIDS+=("$np")
        port=$(wait_port "$T/$LOGTAG.port")
        wrk -t1 -c"$HTTP_BATCH_CONNS" -d"${HTTP_SECS}s" -s "$LUA" "http://127.0.0.1:$port/v1/events" -- "$T/events.ndjson" 1000 > "$T/$LOGTAG-batch.out" 2>&1
        wrk -t1 -c"$HTTP_SINGLE_CONNS" -d"${HTTP_SECS}s" -s "$LUA" "http://127.0.0.1:$port/v1/events" -- "$T/events.ndjson" 1 300000 > "$T/$LOGTAG-single.out" 2>&1
        stop "$np"
        res "httpb_${r}_bare_eps" "$(awk -v q="$(rget "$T/$LOGTAG-batch.out" requests)" -v e="$(rget "$T/$LOGTAG-batch.out" non2xx)" -v d="$(rget "$T/$LOGTAG-batch.out" duration_s)" 'BEGIN {printf "%.0f", 1000 * (q - e) / d}')"
        res "https_${r}_bare_eps" "$(awk -v q="$(rget "$T/$LOGTAG-single.out" requests)" -v e="$(rget "$T/$LOGTAG-single.out" non2xx)" -v d="$(rget "$T/$LOGTAG-single.out" duration_s)" 'BEGIN {printf "%.0f", (q - e) / d}')"
        for kind in batch single; do
            LOGTAG="http-vigil-$kind-$r"
            # allowed lateness 1 d: the wrk connections deliver batches slightly out of order
            start_vigil --data-dir "" --allowed-lateness 1d
            wait_http "$VPORT"
            if [ "$kind" = batch ]; then
                wrk -t1 -c"$HTTP_BATCH_CONNS" -d"${HTTP_SECS}s" -s "$LUA" "http://127.0.0.1:$VPORT/v1/events" -- "$T/events.ndjson" 1000 > "$T/$LOGTAG.out" 2>&1
            else
                wrk -t1 -c"$HTTP_SINGLE_CONNS" -d"${HTTP_SECS}s" -s "$LUA" "http://127.0.0.1:$VPORT/v1/events" -- "$T/events.ndjson" 1 300000 > "$T/$LOGTAG.out" 2>&1
            fi
            t0=$(now)   # drain: every accepted event processed (2 key groups each)
            for _ in $(seq 1 600); do
                rcv=$(metric "$VPORT" "$RCV_HTTP")
                [ "$(metric "$VPORT" vigil_events_processed_total)" -ge $((2 * rcv)) ] && break
                sleep 0.02
            done
            drain=$(echo "$(now) - $t0" | bc)
            key=httpb; [ "$kind" = single ] && key=https
            d=$(rget "$T/$LOGTAG.out" duration_s)
            res "${key}_${r}_vigil_eps" "$(awk -v n="$rcv" -v d="$d" -v x="$drain" -v k="$kind" 'BEGIN {printf "%.0f", n / (d + x)}')"
            res "${key}_${r}_vigil_non2xx" "$(rget "$T/$LOGTAG.out" non2xx)"
            res "${key}_${r}_vigil_late" "$(metric "$VPORT" vigil_events_late_total)"
            res "${key}_${r}_vigil_p99_ms" "$(rget "$T/$LOGTAG.out" p99_ms)"
            res "${key}_${r}_drain_s" "$drain"
            stop_vigil
        done
        echo "  run $r: batches null $(grep "^httpb_${r}_bare_eps" "$T/results" | cut -d' ' -f2) vigil $(grep "^httpb_${r}_vigil_eps" "$T/results" | cut -d' ' -f2) events/s; single null $(grep "^https_${r}_bare_eps" "$T/results" | cut -d' ' -f2) vigil $(grep "^https_${r}_vigil_eps" "$T/results" | cut -d' ' -f2) req/s (load $(cut -d' ' -f1 /proc/loadavg))"
    done
    rm -f "$T/events.ndjson"
fi

# ---- latency: event → webhook at a steady rate ---------------------------------------------
if [[ " $PHASES " == *" latency "* ]]; then
    lat_n=$((LAT_RATE * LAT_SECS))
    echo "latency: $LAT_RATE events/s for $LAT_SECS s ($lat_n events), modes: $LAT_MODES"
    for r in $(seq 1 "$RUNS"); do
        for mode in $LAT_MODES; do
            LOGTAG="lat-$mode-$r"
            rm -f "$T/$LOGTAG.jsonl"
            "$RECEIVER" --out "$T/$LOGTAG.jsonl" > "$T/$LOGTAG.port" 2>&1 &
            wp=$!
            PIDS+=("$wp")
            wport=$(wait_port "$T/$LOGTAG.port")
            redis-cli -p "$REDIS_PORT" flushall >/dev/null
            rm -rf "$T/data"; mkdir -p "$T/data"
            pfx="bench.lat$r${mode//-/}"
            pub=(--subject-prefix "$pfx")
            case $mode in
                core-mem)    start_vigil --nats "$NATS" --subject "$pfx.>" --data-dir "" --webhook "http://127.0.0.1:$wport/" ;;
                core-memdir) start_vigil --nats "$NATS" --subject "$pfx.>" --data-dir "$T/data" --webhook "http://127.0.0.1:$wport/" ;;
                core-redis)  start_vigil --nats "$NATS" --subject "$pfx.>" --redis "$REDIS" --data-dir "" --webhook "http://127.0.0.1:$wport/" ;;
                js-redis)    start_vigil --nats "$NATS" --jetstream --stream "LAT_$r" --consumer "lat_$r" --subject "$pfx.>" \
                                 --redis "$REDIS" --data-dir "" --webhook "http://127.0.0.1:$wport/"
                             pub+=(--jetstream) ;;
                js-redis-b100) start_vigil --nats "$NATS" --jetstream --stream "LATB_$r" --consumer "latb_$r" --subject "$pfx.>" \
                                 --redis "$REDIS" --data-dir "" --fetch-batch 100 --webhook "http://127.0.0.1:$wport/"
                             pub+=(--jetstream) ;;
                js-memdir)   start_vigil --nats "$NATS" --jetstream --stream "LATM_$r" --consumer "latm_$r" --subject "$pfx.>" \
                                 --data-dir "$T/data" --webhook "http://127.0.0.1:$wport/"
                             pub+=(--jetstream) ;;
                *) echo "durable: unknown latency mode $mode"; exit 2 ;;
            esac
            wait_ready "$VPORT"
            sleep 0.3
            "$BUILD/bench_nats_pub" --nats "$NATS" "${pub[@]}" "${INPUTS[@]}" "${EVOPTS[@]}" --count "$lat_n" \
                --rate "$LAT_RATE" --stamp sent_us > "$T/$LOGTAG.pub" 2> "$T/$LOGTAG.err" || true
            prev=-1   # wait until the receiver's log stops growing (2 s), at most 60 s
            for _ in $(seq 1 60); do
                sleep 1
                cur=$(wc -l < "$T/$LOGTAG.jsonl")
                [ "$cur" = "$prev" ] && break
                prev=$cur
            done
            res "lat_${mode}_${r}_processed" "$(metric "$VPORT" vigil_events_processed_total)"
            res "lat_${mode}_${r}_pub_eps" "$(rget "$T/$LOGTAG.pub" pub_eps)"
            stop_vigil
            stop "$wp"
            python3 "$ROOT/bench/webhook_latency.py" "$T/$LOGTAG.jsonl" > "$T/$LOGTAG.lat" 2>&1 || true
            for k in alerts p50_ms p99_ms p999_ms max_ms detect_p50_ms detect_p99_ms deliver_p50_ms deliver_p99_ms; do res "lat_${mode}_${r}_$k" "$(rget "$T/$LOGTAG.lat" "$k")"; done
            echo "  $mode run $r: $(rget "$T/$LOGTAG.lat" alerts) alerts, p50 $(rget "$T/$LOGTAG.lat" p50_ms) ms, p99 $(rget "$T/$LOGTAG.lat" p99_ms) ms, max $(rget "$T/$LOGTAG.lat" max_ms) ms; send→detected p99 $(rget "$T/$LOGTAG.lat" detect_p99_ms) ms, detected→received p99 $(rget "$T/$LOGTAG.lat" deliver_p99_ms) ms (published at $(rget "$T/$LOGTAG.pub" pub_eps)/s; load $(cut -d' ' -f1 /proc/loadavg))"
            if grep -q 'no received_us' "$T/$LOGTAG.lat"; then echo "  (webhook_receiver logs no received_us: latency not measurable)"; fi
        done
    done
fi

# ---- lowrate: Redis commits at the quickstart's 300 events/s --------------------------------
if [[ " $PHASES " == *" lowrate "* ]]; then
    low_n=$((LOW_RATE * LOW_SECS))
    echo "lowrate: JetStream + Redis, $LOW_RATE events/s for $LOW_SECS s ($low_n events), $WORKERS workers"
    for r in $(seq 1 "$RUNS"); do
        LOGTAG="low-$r"
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        pfx="bench.low$r"
        start_vigil --nats "$NATS" --jetstream --stream "LOW_$r" --consumer "low_$r" --subject "$pfx.>" \
            --redis "$REDIS" --data-dir ""
        wait_ready "$VPORT"
        sleep 0.3
        c0=$(metric "$VPORT" vigil_state_commits_total); rt0=$(metric "$VPORT" vigil_redis_round_trips_total)
        t0=$(now)
        "$BUILD/bench_nats_pub" --nats "$NATS" --subject-prefix "$pfx" --jetstream "${INPUTS[@]}" "${EVOPTS[@]}" \
            --count "$low_n" --rate "$LOW_RATE" > "$T/$LOGTAG.pub" 2> "$T/$LOGTAG.err" || true
        for _ in $(seq 1 100); do   # until every delivery (2 key groups an event) is processed, 5 s at most
            [ "$(metric "$VPORT" vigil_events_processed_total)" -ge $((2 * low_n)) ] && break
            sleep 0.05
        done
        t1=$(now)
        c1=$(metric "$VPORT" vigil_state_commits_total); rt1=$(metric "$VPORT" vigil_redis_round_trips_total)
        secs=$(echo "$t1 - $t0" | bc)
        res "low_${r}_events" "$low_n"
        res "low_${r}_secs" "$secs"
        res "low_${r}_commits" "$((c1 - c0))"
        res "low_${r}_commits_per_s_per_worker" "$(awk -v c="$((c1 - c0))" -v s="$secs" -v w="$WORKERS" 'BEGIN {printf "%.1f", c / s / w}')"
        res "low_${r}_commits_per_event" "$(awk -v c="$((c1 - c0))" -v n="$low_n" 'BEGIN {printf "%.3f", c / n}')"
        res "low_${r}_rt_per_event" "$(awk -v c="$((rt1 - rt0))" -v n="$low_n" 'BEGIN {printf "%.3f", c / n}')"
        res "low_${r}_processed" "$(metric "$VPORT" vigil_events_processed_total)"
        stop_vigil
        echo "  lowrate run $r: $((c1 - c0)) commits for $low_n events in $secs s: $(grep "^low_${r}_commits_per_s_per_worker" "$T/results" | cut -d' ' -f2) commits/s per worker, $(grep "^low_${r}_commits_per_event" "$T/results" | cut -d' ' -f2) per event (load $(cut -d' ' -f1 /proc/loadavg))"
    done
fi

# ---- js_aof: the js pair with a durable Redis -------------------------------------------------
if [[ " $PHASES " == *" js_aof "* ]]; then
    echo "js_aof: Redis appendonly yes, appendfsync always"
    stop "$REDIS_PID"
    rm -rf "$T/redis"; mkdir -p "$T/redis"
    start_redis --appendonly yes --appendfsync always
    js_pair js_aof
fi

# ---- the table --------------------------------------------------------------------------------
echo
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the run"
echo
awk -v runs="$RUNS" '
{ r[$1] = $2 }
function has(k) { return (k in r) && r[k] != "" && r[k] != "nan" }
function row(name, unit, target, tgt, a, b,   i, v, bb, ratio, met, bs, rs) {
    for (i = 1; i <= runs; i++) {
        v = a "_" i "_vigil_eps"; bb = (b == "" ? a : b) "_" i "_bare_eps"
        if (!has(v)) continue
        ratio = (has(bb) && r[bb] > 0) ? 100 * r[v] / r[bb] : -1
        met = (tgt > 0 && ratio >= 0) ? ((ratio >= tgt) ? "yes" : "NO") : ""
        bs = has(bb) ? sprintf("%d", r[bb]) : "—"
        rs = (ratio >= 0) ? sprintf("%.1f %%", ratio) : "—"
        printf "| %-44s | %d | %12s %-8s | %12s | %7s | %-8s | %-4s |\n", name, i, sprintf("%d", r[v]), unit, bs, rs, target, met
    }
}
END {
    printf "| %-44s | %s | %21s | %12s | %7s | %-8s | %-4s |\n", "pair (vigil vs bare)", "run", "vigil", "bare", "ratio", "target", "met"
    printf "|----------------------------------------------|---|-----------------------|--------------|---------|----------|------|\n"
    row("1. JetStream -> engine -> Redis (AOF off)", "events/s", ">= 70 %", 70, "js", "")
    row("1b. same, Redis appendfsync always", "events/s", ">= 70 %", 70, "js_aof", "")
    row("2. core NATS -> engine, memory, no snapshots", "events/s", ">= 50 %", 50, "core", "")
    row("2b. same, snapshots every 10 s (--data-dir)", "events/s", ">= 50 %", 50, "core_snap", "core")
    row("3a. POST NDJSON batches of 1000", "events/s", "", 0, "httpb", "")
    row("3b. POST single events", "req/s", "", 0, "https", "")
    for (i = 1; i <= runs; i++) {
        if (has("js_" i "_rt_per_1000"))
            printf "| %-44s | %d | %21s | %12s | %7s | %-8s | %-4s |\n", "4b. Redis round trips per 1000 events (js)", i,
                   r["js_" i "_rt_per_1000"], "", "", "<= 3", ((r["js_" i "_rt_per_1000"] <= 3) ? "yes" : "NO")
        if (has("js_aof_" i "_rt_per_1000"))
            printf "| %-44s | %d | %21s | %12s | %7s | %-8s | %-4s |\n", "    same, appendfsync always", i,
                   r["js_aof_" i "_rt_per_1000"], "", "", "<= 3", ((r["js_aof_" i "_rt_per_1000"] <= 3) ? "yes" : "NO")
    }
    for (k in r) if (k ~ /^lat_.*_p99_ms$/) { split(k, p, "_"); modes[p[2]] = 1 }
    for (m in modes) for (i = 1; i <= runs; i++) {
        b = "lat_" m "_" i "_"
        if (!has(b "p99_ms")) continue
        printf "| %-44s | %d | %21s | %12s | %7s | %-8s | %-4s |\n", "4a. webhook latency p50 / p99 ms, " m, i,
               sprintf("%.1f / %.1f", r[b "p50_ms"], r[b "p99_ms"]), sprintf("%d alerts", r[b "alerts"]), "",
               "p99 < 10", ((r[b "p99_ms"] < 10) ? "yes" : "NO")
    }
}' "$T/results"
echo
[ -n "$RESULTS_OUT" ] && cp "$T/results" "$RESULTS_OUT"
echo "details (key value):"
sort "$T/results" | grep -v -E '_(bare|vigil)_eps$' | paste -sd' ' | fold -s -w 160
