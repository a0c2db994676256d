#!/usr/bin/env bash
# instructions.sh — two builds of vigil compared by instructions executed
# (valgrind --tool=callgrind), which, unlike events/s, does not move with
# the noise of a shared VM (the same binary and input give the same count
# within a fraction of a percent). Companion of compare_builds.sh, whose
# wall-clock medians on the 2-core VM spread by ±15 % for one binary.
#
#   OLD=/path/to/old/build-bench NEW=build-bench bash bench/instructions.sh
#
# Measures, for each build, on the first SLICE transactions of the card data
# (default 100000) and their fraud reports:
#   replay   `vigil replay --threads 1` with rules/fraud: the whole process;
#   js       `vigil serve --jetstream --redis` consuming the same events from a
#            JetStream stream (filled once by `vigil feed --jetstream`) until
#            every message is acked, then SIGTERM: the whole process, every
#            thread (fetcher, workers, HTTP, health), so the idle polling of
#            the run's last seconds is in it too (a few million instructions);
#   core     `vigil serve` on core NATS, memory store, nothing durable, fed
#            the same events by bench_nats_pub (one event a message) until
#            all are received and the queues are empty, then SIGTERM.
# Prints instructions per event and new/old. Needs ../shared/data,
# valgrind, nats-server, redis-server, redis-cli, curl, python3 and bc, and
# bench_nats_pub in NEW.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
OLD=${OLD:?set OLD to the old build folder}
NEW=${NEW:-$ROOT/build-bench}
SLICE=${SLICE:-100000}
for c in valgrind nats-server redis-server redis-cli curl; do
    command -v "$c" >/dev/null || { echo "instructions: $c not found"; exit 1; }
done
T=$(mktemp -d /tmp/vigil-instr.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
{ zcat "$DATA/fdh-transactions-2018-04-to-07.csv.gz" || true; } | head -$((SLICE + 1)) > "$T/tx.csv"
last=$(tail -1 "$T/tx.csv" | cut -d, -f2)
zcat "$DATA/fdh-fraud-reports-2018-04-to-07.csv.gz" | awk -F, -v last="$last" 'NR == 1 || $2 <= last' > "$T/rp.csv"
EVOPTS=(--time-field tx_datetime,report_datetime --id-field transaction_id,report_id)
INPUTS=(--input "tx=$T/tx.csv" --input "report=$T/rp.csv")
N=$(( $(wc -l < "$T/tx.csv") - 1 + $(wc -l < "$T/rp.csv") - 1 ))
ir() { sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$1" | tail -1; }

replay_ir() {   # replay_ir BUILD TAG
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1/vigil" replay --threads 1 --rules "$ROOT/rules/fraud" \
        "${INPUTS[@]}" "${EVOPTS[@]}" --output /dev/null > /dev/null 2> "$T/replay-$2.log"
    ir "$T/replay-$2.log"
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NP=$(freeport); RP=$(freeport)
mkdir -p "$T/js" "$T/redis"
nats-server -a 127.0.0.1 -p "$NP" -js -sd "$T/js" > "$T/nats.log" 2>&1 & PIDS+=($!)
redis-server --bind 127.0.0.1 --port "$RP" --save '' --appendonly no --dir "$T/redis" > "$T/redis.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && grep -q 'Server is ready' "$T/nats.log" && break; sleep 0.05; done
"$NEW/vigil" feed --nats "nats://127.0.0.1:$NP" --jetstream "${INPUTS[@]}" "${EVOPTS[@]}" > "$T/feed.log" 2>&1
MSGS=$(sed -n 's/.*: \([0-9]*\) stored.*/\1/p' "$T/feed.log" | tail -1)

js_ir() {   # js_ir BUILD TAG
    redis-cli -p "$RP" flushall > /dev/null
    local port; port=$(freeport)
    (cd "$T" && exec valgrind --tool=callgrind --callgrind-out-file="${CG_OUT:-/dev/null}.$2" "$1/vigil" serve --rules "$ROOT/rules/fraud" \
        "${EVOPTS[@]}" --workers 2 --listen "127.0.0.1:$port" --nats "nats://127.0.0.1:$NP" --jetstream \
        --consumer "instr_$2" --redis "redis://127.0.0.1:$RP" --data-dir "") > "$T/js-$2.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    local acked=0
    for _ in $(seq 1 3600); do
        acked=$(curl -s --noproxy '*' "http://127.0.0.1:$port/metrics" 2>/dev/null |
                awk '$1 == "vigil_jetstream_messages_total{outcome=\"acked\"}" {print $2}')
        [ "${acked:-0}" -ge "$MSGS" ] && break
        sleep 0.5
    done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    [ "${acked:-0}" -ge "$MSGS" ] || { echo "instructions: $2 acked only ${acked:-0} of $MSGS" >&2; }
    ir "$T/js-$2.log"
}

core_ir() {   # core_ir BUILD TAG: core NATS → engine, memory store, nothing durable
    local port; port=$(freeport)
    (cd "$T" && exec valgrind --tool=callgrind --callgrind-out-file="${CG_OUT:-/dev/null}.core-$2" "$1/vigil" serve \
        --rules "$ROOT/rules/fraud" "${EVOPTS[@]}" --workers 2 --listen "127.0.0.1:$port" \
        --nats "nats://127.0.0.1:$NP" --subject 'bench.core.>' --data-dir "") > "$T/core-$2.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
    "$NEW/bench_nats_pub" --nats "nats://127.0.0.1:$NP" --subject-prefix bench.core "${INPUTS[@]}" "${EVOPTS[@]}" \
        --window 5000 --progress-http "http://127.0.0.1:$port/metrics" \
        --progress-metric 'vigil_events_received_total{source="nats"}' > "$T/pub-$2.log" 2>&1
    local got=0 depth=1
    for _ in $(seq 1 3600); do
        local m; m=$(curl -s --noproxy '*' "http://127.0.0.1:$port/metrics" 2>/dev/null)
        got=$(echo "$m" | awk '$1 == "vigil_events_received_total{source=\"nats\"}" {print $2}')
        depth=$(echo "$m" | awk '$1 == "vigil_queue_depth" {print $2}')
        [ "${got:-0}" -ge "$N" ] && [ "${depth:-1}" = 0 ] && break
        sleep 0.5
    done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    [ "${got:-0}" -ge "$N" ] || echo "instructions: core $2 received only ${got:-0} of $N" >&2
    ir "$T/core-$2.log"
}

echo "machine: $(nproc) cores; date $(date -u +%Y-%m-%dT%H:%MZ); $N events ($MSGS stream messages); old $OLD, new $NEW"
ro=$(replay_ir "$OLD" old); rn=$(replay_ir "$NEW" new)
jo=$(js_ir "$OLD" old); jn=$(js_ir "$NEW" new)
co=$(core_ir "$OLD" old); cn=$(core_ir "$NEW" new)
printf "%-8s %16s %16s %10s %10s %8s\n" measure "old instr" "new instr" "old/event" "new/event" new/old
for m in replay js core; do
    case $m in replay) o=$ro; n=$rn ;; js) o=$jo; n=$jn ;; core) o=$co; n=$cn ;; esac
    printf "%-8s %16s %16s %10.0f %10.0f %8.4f\n" $m "$o" "$n" "$(echo "$o / $N" | bc -l)" "$(echo "$n / $N" | bc -l)" \
        "$(echo "$n / $o" | bc -l)"
done
