#!/usr/bin/env bash
# auth_overhead.sh — what access control and TLS cost at the edge (issue 13:
# "single-event POSTs per second with auth on vs off (target >= 95 %), and
# the same with TLS", measured in one run).
#
# Starts four `vigil serve` side by side on loopback, identical but for the
# edge: plain (no tokens), auth (ingest tokens: every request's bearer token
# hashed and compared, its role checked), tls (HTTPS with a certificate made
# here by openssl), tls+auth. Then ROUNDS rounds; in each, bench_http_single
# (bench/http_single.c: libcurl multi, CONNS keep-alive connections, one JSON
# event per POST) loads each server for SECS seconds, the order of the four
# rotated every round, so drift of this shared machine hits all alike. The
# servers are idle while another is measured: after each run the script
# waits until that server's workers have matched everything it accepted
# (202 means queued), or the fastest mode's backlog would slow the next
# one down. Per mode: the median of the rounds' requests/s and of the
# server's CPU µs per request (user + system of its process from the start
# of the run until it is idle again, over the requests answered 202);
# ratios against plain (and
# tls+auth against tls). Then (INSTR=1, the default, when valgrind is
# installed) the server's instructions per request under callgrind.
#
#   bash bench/auth_overhead.sh                       # ROUNDS=5 SECS=5 CONNS=8
#   ROUNDS=7 SECS=8 CONNS=16 bash bench/auth_overhead.sh
#   MODES="plain auth" ROUNDS=10 SECS=2 bash bench/auth_overhead.sh   # a pair only (plain is required)
#
# Needs build/vigil and build/bench_http_single (cmake --build build), openssl.
# Every process it started and its scratch directory are removed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
CONNS=${CONNS:-8}
VIGIL=$BUILD/vigil
CLIENT=$BUILD/bench_http_single
[ -x "$VIGIL" ] && [ -x "$CLIENT" ] || { echo "auth_overhead: build first: cmake --build build" >&2; exit 2; }
command -v openssl >/dev/null || { echo "auth_overhead: needs the openssl CLI" >&2; exit 2; }

TMP=$(mktemp -d /tmp/vigil-auth-bench-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
mkdir "$TMP/rules"
# one rule that reads every event and almost never alerts: the engine's work
# is the same in every mode, and small next to the edge's
cat >"$TMP/rules/bench.lua" <<'EOF'
rule { name = "bench", key = "k", window = sliding("1m"), when = ge(count(), 1000000) }
EOF
TOKEN=bench-ingest-$(openssl rand -hex 16)

read -r -a MODES <<<"${MODES:-plain auth tls tls+auth}"   # a subset: MODES="plain auth"
declare -A PORT PID SCHEME
for mode in "${MODES[@]}"; do
    conf=$TMP/$mode.conf.lua
    {
        echo "return { rules = \"$TMP/rules\", listen = \"127.0.0.1:0\", workers = 2,"
        case $mode in tls*) echo "  tls_cert = \"$TMP/cert.pem\", tls_key = \"$TMP/key.pem\"," ;; esac
        case $mode in *auth) echo "  tokens = { { name = \"shop\", token = \"$TOKEN\", role = \"ingest\" }," \
                                  "{ name = \"ops\", token = \"viewer-$TOKEN\", role = \"viewer\" } }," ;; esac
        echo "}"
    } >"$conf"
    "$VIGIL" serve --config "$conf" --data-dir "" --idle-timeout 0 >"$TMP/$mode.log" 2>&1 &
    PID[$mode]=$!
    PIDS+=("$!")
done
for mode in "${MODES[@]}"; do
    for _ in $(seq 200); do
        line=$(grep -o 'listening on https\?://127.0.0.1:[0-9]*' "$TMP/$mode.log" || true)
        [ -n "$line" ] && break
        sleep 0.05
    done
    [ -n "$line" ] || { echo "auth_overhead: vigil ($mode) did not start:" >&2; cat "$TMP/$mode.log" >&2; exit 1; }
    PORT[$mode]=${line##*:}
    SCHEME[$mode]=$(echo "$line" | sed 's/listening on \(https\?\):.*/\1/')
done

HZ=$(getconf CLK_TCK)
# user + system CPU ticks of a process
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# wait (at most 60 s) until the process uses under 5 % of a core over 300 ms
quiesce() {
    local a b
    for _ in $(seq 200); do
        a=$(cpu_ticks "$1"); sleep 0.3; b=$(cpu_ticks "$1")
        [ $(( (b - a) * 1000 / HZ )) -lt 15 ] && return 0
    done
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')"
echo "rounds $ROUNDS x $SECS s per mode, $CONNS keep-alive connections, one event per POST"
for r in $(seq "$ROUNDS"); do
    n=${#MODES[@]}
    for i in $(seq 0 $((n - 1))); do
        mode=${MODES[$(( (i + r) % n ))]}
        args=(--url "${SCHEME[$mode]}://127.0.0.1:${PORT[$mode]}/v1/events" --conns "$CONNS" --secs "$SECS")
        case $mode in *auth) args+=(--token "$TOKEN") ;; esac
        case $mode in tls*) args+=(--cacert "$TMP/cert.pem") ;; esac
        t0=$(cpu_ticks "${PID[$mode]}")
        out=$("$CLIENT" "${args[@]}")
        # 202 means queued: the workers may still be matching what was accepted. Wait
        # until they are done, so this mode's work is not left to slow down the next
        # one, and count it in this mode's CPU per request.
        quiesce "${PID[$mode]}"
        t1=$(cpu_ticks "${PID[$mode]}")
        req=$(echo "$out" | sed 's/.*requests=\([0-9]*\).*/\1/')
        out="$out $(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$req" 'BEGIN { if (n > 0) printf "cpu_us_per_req=%.2f", d * 1e6 / hz / n }')"
        echo "round $r $mode $out"
        echo "$mode $out" >>"$TMP/results"
    done
done
for mode in "${MODES[@]}"; do
    if grep -q "$TOKEN" "$TMP/$mode.log"; then echo "auth_overhead: the token is in the $mode log!" >&2; exit 1; fi
done

# Instructions per request (valgrind --tool=callgrind, every thread of the
# server): the same binary and load give the same count within a fraction of
# a percent, whatever else runs on the machine, unlike requests/s. Each mode
# runs twice under callgrind, answering N1 and then N2 requests; the
# difference over N2 - N1 leaves out the start (rules compiled, TLS set up).
if [ "${INSTR:-1}" = 1 ] && command -v valgrind >/dev/null; then
    N1=${N1:-2000}
    N2=${N2:-6000}
    echo "instructions (callgrind): $N1 and $N2 requests per mode, 4 connections"
    for mode in "${MODES[@]}"; do
        for n in $N1 $N2; do
            cg=$TMP/cg.$mode.$n
            valgrind --tool=callgrind --callgrind-out-file="$cg" "$VIGIL" serve --config "$TMP/$mode.conf.lua" \
                --data-dir "" --idle-timeout 0 >"$TMP/cg-$mode.log" 2>&1 &
            vpid=$!
            PIDS+=("$vpid")
            line=""
            for _ in $(seq 1200); do
                line=$(grep -o 'listening on https\?://127.0.0.1:[0-9]*' "$TMP/cg-$mode.log" || true)
                [ -n "$line" ] && break
                sleep 0.1
            done
            [ -n "$line" ] || { echo "auth_overhead: vigil ($mode) under callgrind did not start" >&2; exit 1; }
            args=(--url "${SCHEME[$mode]}://127.0.0.1:${line##*:}/v1/events" --conns 4 --count "$n")
            case $mode in *auth) args+=(--token "$TOKEN") ;; esac
            case $mode in tls*) args+=(--cacert "$TMP/cert.pem") ;; esac
            "$CLIENT" "${args[@]}" >/dev/null
            kill -TERM "$vpid"
            wait "$vpid" || true
            ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$cg")
            echo "$mode instr_n$n=$ir" >>"$TMP/results"
        done
    done
fi

# medians per mode, then the ratios
awk '
function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    m = $1
    for (f = 2; f <= NF; f++) {
        split($f, kv, "=")
        if (kv[1] == "rps") { nr[m]++; rps[m, nr[m]] = kv[2] }
        if (kv[1] == "cpu_us_per_req") { nc[m]++; cpu[m, nc[m]] = kv[2] }
        if (kv[1] == "errors") err[m] += kv[2]
        if (kv[1] == "instr_n" N1) i1[m] = kv[2]
        if (kv[1] == "instr_n" N2) i2[m] = kv[2]
    }
}
END {
    split("plain auth tls tls+auth", order, " ")
    for (k = 1; k <= 4; k++) {
        m = order[k]
        if (!nr[m]) continue
        delete a; for (i = 1; i <= nr[m]; i++) a[i] = rps[m, i]; R[m] = median(a, nr[m])
        delete a; for (i = 1; i <= nc[m]; i++) a[i] = cpu[m, i]; C[m] = median(a, nc[m])
        I[m] = (i2[m] && i1[m]) ? (i2[m] - i1[m]) / (N2 - N1) : 0
    }
    printf "\n| mode | requests/s (median) | vs plain | server CPU µs/request (median) | vs plain | server instructions/request | vs plain | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for (k = 1; k <= 4; k++) {
        m = order[k]
        if (!nr[m]) continue
        printf "| %s | %.0f | %.1f %% | %.1f | %.1f %% | %s | %s | %d |\n", m, R[m], 100 * R[m] / R["plain"], C[m], \
            100 * C[m] / C["plain"], I[m] ? sprintf("%.0f", I[m]) : "-", I[m] && I["plain"] ? sprintf("%.1f %%", 100 * I[m] / I["plain"]) : "-", err[m]
    }
    if (I["auth"] && I["plain"]) printf "\nauth on vs off, instructions per request: %.1f %% (plain HTTP)%s\n", \
        100 * I["auth"] / I["plain"], I["tls"] && I["tls+auth"] ? sprintf(", %.1f %% (HTTPS)", 100 * I["tls+auth"] / I["tls"]) : ""
    if (nr["auth"]) printf "\nauth on vs off, plain HTTP: %.1f %% of the requests/s, %.1f %% of the CPU per request (target >= 95 %% of the requests/s)\n", \
        100 * R["auth"] / R["plain"], 100 * C["auth"] / C["plain"]
    if (nr["tls"] && nr["tls+auth"]) printf "auth on vs off, HTTPS: %.1f %% of the requests/s, %.1f %% of the CPU per request\n", \
        100 * R["tls+auth"] / R["tls"], 100 * C["tls+auth"] / C["tls"]
    if (nr["tls"]) printf "HTTPS vs plain HTTP: %.1f %% of the requests/s, %.1f %% of the CPU per request\n", \
        100 * R["tls"] / R["plain"], 100 * C["tls"] / C["plain"]
}' N1="${N1:-0}" N2="${N2:-0}" "$TMP/results"
