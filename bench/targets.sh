#!/usr/bin/env bash
# targets.sh — every row of issue 16's table ("close to the machine") in one
# run, each beside its own ceiling measured in the same run, and one table
# against the targets. Wall-clock rates on this shared VM move with what else
# runs; the ratios within a row are the measure (both sides alternate). Rows
# a and g keep the best of RUNS (wall clock of the whole process) and also
# give events per CPU-second (user + sys: less moved by other processes);
# rows c-f give the median of SRV_RUNS runs.
#
#   a  replay of the card data, rules/fraud, one thread, whole process incl.
#      gunzip (wall time of the process)   vs   the same replay with one rule
#      that never matches (bench/rules_floor: decode + route floor)
#      target: ratio >= 0.60 and >= 1.2 M events/s; best of RUNS each
#   b  synthetic mix, 1 M keys, 20 rules, engine only (bench_synth --mode mix,
#      events per CPU-second)                          target >= 600 k events/s
#      + --mode worst (200 k keys): attacker's rate / normal   target >= 50 %
#      + --mode memory: idle velocity key, heap bytes  target <= 256 B
#   c  core NATS -> engine (memory store, no snapshots)   vs   a bare nats.c
#      subscriber that counts (bench/durable.sh, phase core)   target >= 0.50
#   d  JetStream -> engine -> Redis commit   vs   a bare pull consumer that
#      only acks (durable.sh, phase js)                        target >= 0.70
#      + Redis round trips per 1000 events                     target <= 3
#   e  event -> webhook p99 at 20 k events/s, JetStream + Redis (durable.sh,
#      phase latency, mode js-redis)                            target < 10 ms
#   f  Redis commits at 300 events/s (the quickstart's rate), JetStream +
#      Redis, 2 workers (durable.sh, phase lowrate): commits per second per
#      worker and per event                target <= 500 /s per worker
#      (issue 16: "<= 1 commit per 2 ms per worker")
#   g  the three reference rules (bench/rules_baseline), whole process, from
#      the uncompressed CSV (decompressed into the temporary directory)   vs
#      bench/baseline.py on the same file (plain CPython)       target >= 3x
#
#   bash bench/targets.sh                         # every row, 7-9 min here
#   ROWS="a g" RUNS=5 bash bench/targets.sh
#   SRV_RUNS=2 LAT_SECS=30 SYNTH_EVENTS=2M bash bench/targets.sh
#
# Builds what is missing in build-bench (Release). Needs ../shared/data (the
# card data, read in place), and for c-f nats-server and redis-server (see
# bench/durable.sh). Removes every process it started and its temporary
# directory on exit (trap).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${VIGIL_DATA_DIR:-$ROOT/../shared/data}
BUILD=${BUILD:-$ROOT/build-bench}
ROWS=${ROWS:-"a b c d e f g"}
RUNS=${RUNS:-3}                     # rows a and g (alternating, best of RUNS)
SRV_RUNS=${SRV_RUNS:-2}             # rows c-f (durable.sh's RUNS; the table: median of the runs)
SYNTH_KEYS=${SYNTH_KEYS:-1M}
SYNTH_EVENTS=${SYNTH_EVENTS:-}      # bench_synth's default when empty
WORST_KEYS=${WORST_KEYS:-200k}     # --mode worst seeds its keys four times (~140 s at 1 M here)
MEM_KEYS=${MEM_KEYS:-1M}
LAT_SECS=${LAT_SECS:-20}
LOW_SECS=${LOW_SECS:-15}
PY=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}   # not a pyenv shim
TX=$DATA/fdh-transactions-2018-04-to-07.csv.gz
RP=$DATA/fdh-fraud-reports-2018-04-to-07.csv.gz
VIGIL=$BUILD/vigil

[ -f "$TX" ] && [ -f "$RP" ] || {
    echo "targets: the card data is not in $DATA (expected fdh-transactions-2018-04-to-07.csv.gz and"
    echo "         fdh-fraud-reports-2018-04-to-07.csv.gz; set VIGIL_DATA_DIR)"; exit 1; }
has_row() { [[ " $ROWS " == *" $1 "* ]]; }

TOOLS=(vigil bench_synth webhook_receiver bench_nats_pub bench_core_bare bench_js_bare bench_mhd_null bench_metrics_wait)
missing=()
for t in "${TOOLS[@]}"; do [ -x "$BUILD/$t" ] || missing+=("$t"); done
if [ "${#missing[@]}" -gt 0 ] || [ "${REBUILD:-0}" = 1 ]; then
    echo "targets: building in $BUILD (Release): ${missing[*]:-all}"
    [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target "${TOOLS[@]}" >/dev/null
fi

T=$(mktemp -d /tmp/vigil-targets.XXXXXX)
CHILD=""
cleanup() {
    if [ -n "$CHILD" ]; then kill "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
run_child() {   # run_child LOG CMD...: in the background so that the trap can stop it
    local log=$1; shift
    "$@" > "$log" 2>&1 &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return $rc
}
now() { date +%s.%N; }
res() { echo "$1 $2" >> "$T/results"; }
rget() { awk -v k="$2" '$1 == "RESULT" && $2 == k {v = $3} END {print (v == "" ? "nan" : v)}' "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
: > "$T/results"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- cli server engine lua 2>/dev/null || echo ' + uncommitted cli/server/engine/lua changes')"
echo "build:   $BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt"))"
echo "load:    $(load) (1/5/15 min) before the run; rows: $ROWS"
echo

# ---- a: replay rules/fraud vs the decode + route floor ------------------------------------
if has_row a; then
    echo "a: replay of the card data, one thread, whole process (best of $RUNS, alternating)"
    RARGS=(--threads 1 --input "tx=$TX" --input "report=$RP" --time-field tx_datetime,report_datetime
           --id-field transaction_id,report_id --output /dev/null)
    best_v=999999; best_f=999999; cpu_v=999999; cpu_f=999999; n=0
    for i in $(seq 1 "$RUNS"); do
        for side in floor vigil; do
            rules=$ROOT/rules/fraud; [ "$side" = floor ] && rules=$ROOT/bench/rules_floor
            t0=$(now)
            /usr/bin/time -f "CPU %U %S" -o "$T/a-$side.cpu" "$VIGIL" replay --rules "$rules" "${RARGS[@]}" > "$T/a-$side.log" 2>&1
            t1=$(now)
            s=$(echo "$t1 - $t0" | bc)
            c=$(awk '$1 == "CPU" {print $2 + $3}' "$T/a-$side.cpu")
            if [ "$side" = floor ]; then cpu_f=$(awk -v a="$cpu_f" -v b="$c" 'BEGIN {print (b < a) ? b : a}')
            else cpu_v=$(awk -v a="$cpu_v" -v b="$c" 'BEGIN {print (b < a) ? b : a}'); fi
            n=$(sed -n 's/^events: \([0-9]*\) read.*/\1/p' "$T/a-$side.log")
            if [ "$side" = floor ]; then best_f=$(awk -v a="$best_f" -v b="$s" 'BEGIN {print (b < a) ? b : a}')
            else best_v=$(awk -v a="$best_v" -v b="$s" 'BEGIN {print (b < a) ? b : a}'); fi
            echo "  run $i $side: $(printf '%.2f' "$s") s, CPU $c s ($(awk -v n="$n" -v s="$s" 'BEGIN {printf "%.0f", n / s}') events/s, $(sed -n 's/.* late; \([0-9]*\) alerts.*/\1/p' "$T/a-$side.log") alerts; load $(cut -d' ' -f1 /proc/loadavg))"
        done
    done
    res a_events "$n"
    res a_vigil_eps "$(awk -v n="$n" -v s="$best_v" 'BEGIN {printf "%.0f", n / s}')"
    res a_floor_eps "$(awk -v n="$n" -v s="$best_f" 'BEGIN {printf "%.0f", n / s}')"
    res a_vigil_cpu_eps "$(awk -v n="$n" -v s="$cpu_v" 'BEGIN {printf "%.0f", n / s}')"   # events per CPU-second (user + sys)
    res a_floor_cpu_eps "$(awk -v n="$n" -v s="$cpu_f" 'BEGIN {printf "%.0f", n / s}')"
    res a_alerts "$(sed -n 's/.* late; \([0-9]*\) alerts.*/\1/p' "$T/a-vigil.log")"
fi

# ---- b: the synthetic mix, the attacker, idle key memory ------------------------------------
if has_row b; then
    echo "b: bench_synth, $SYNTH_KEYS keys (mix), $WORST_KEYS (worst), $MEM_KEYS (memory)"
    SARGS=(--rules-dir "$ROOT/bench/rules_synth" --seed 42)
    ev=(); [ -n "$SYNTH_EVENTS" ] && ev=(--events "$SYNTH_EVENTS")
    for m in mix worst memory; do
        k=$SYNTH_KEYS; [ "$m" = memory ] && k=$MEM_KEYS; [ "$m" = worst ] && k=$WORST_KEYS
        e=("${ev[@]}"); [ "$m" = memory ] && e=()
        t0=$(now)
        run_child "$T/b-$m.log" "$BUILD/bench_synth" --mode "$m" "${SARGS[@]}" --keys "$k" "${e[@]}" ||
            { echo "targets: bench_synth --mode $m failed:"; tail -5 "$T/b-$m.log"; }
        echo "  $m: $(echo "$(now) - $t0" | bc | cut -c1-5) s wall (load $(cut -d' ' -f1 /proc/loadavg))"
    done
    res b_mix_engine_eps "$(rget "$T/b-mix.log" mix_engine_eps)"
    res b_mix_pipeline_eps "$(rget "$T/b-mix.log" mix_pipeline_eps)"
    res b_worst_patterns_pct "$(rget "$T/b-worst.log" worst_patterns_ratio_pct)"
    res b_worst_full_pct "$(rget "$T/b-worst.log" worst_full_ratio_pct)"
    res b_mem_heap_bytes "$(rget "$T/b-memory.log" mem_idle_key_heap_bytes)"
    res b_mem_rss_bytes "$(rget "$T/b-memory.log" mem_idle_key_rss_bytes)"
fi

# ---- c-f: the servers, through bench/durable.sh ---------------------------------------------
phases=""
has_row d && phases+=" js"
has_row c && phases+=" core"
has_row e && phases+=" latency"
has_row f && phases+=" lowrate"
if [ -n "$phases" ]; then
    echo "c-f: bench/durable.sh PHASES=\"${phases# }\" RUNS=$SRV_RUNS"
    PHASES="${phases# }" RUNS=$SRV_RUNS CORE_SNAP=0 LAT_MODES=js-redis LAT_SECS=$LAT_SECS LOW_SECS=$LOW_SECS \
        BUILD=$BUILD RESULTS_OUT="$T/durable.res" VIGIL_DATA_DIR=$DATA \
        run_child "$T/durable.log" bash "$ROOT/bench/durable.sh" || { echo "targets: durable.sh failed:"; tail -15 "$T/durable.log"; }
    grep -E '^  (js|core|js-redis|lowrate) run|^  [0-9]+ messages' "$T/durable.log" || true
    [ -f "$T/durable.res" ] && cat "$T/durable.res" >> "$T/results"
fi

# ---- g: the three reference rules from the uncompressed CSV vs the Python script ----------
if has_row g; then
    echo "g: bench/rules_baseline vs bench/baseline.py ($("$PY" --version)), uncompressed CSV (best of $RUNS, alternating)"
    CSV=$T/transactions.csv
    zcat "$TX" > "$CSV"
    n=$(( $(wc -l < "$CSV") - 1 ))
    py=$("$PY" "$ROOT/bench/baseline.py" "$CSV" | sort)
    vg=$("$VIGIL" replay --rules "$ROOT/bench/rules_baseline" --input "$CSV" --time-field tx_datetime \
          --id-field transaction_id --output /dev/null 2>&1 | awk '$1 ~ /^(over_220|four_in_1h|small_then_big)$/ {print $1, $2}' | sort)
    if [ "$py" = "$vg" ]; then echo "  same alert counts: $(echo "$py" | tr '\n' ' ')"; res g_counts_equal 1
    else echo "  ALERT COUNTS DIFFER: python $(echo "$py" | tr '\n' ' '); vigil $(echo "$vg" | tr '\n' ' ')"; res g_counts_equal 0; fi
    best_v=999999; best_p=999999; cpu_v=999999; cpu_p=999999
    for i in $(seq 1 "$RUNS"); do
        t0=$(now); /usr/bin/time -f "CPU %U %S" -o "$T/g-py.cpu" "$PY" "$ROOT/bench/baseline.py" "$CSV" > /dev/null; t1=$(now)
        sp=$(echo "$t1 - $t0" | bc)
        t0=$(now); /usr/bin/time -f "CPU %U %S" -o "$T/g-vigil.cpu" "$VIGIL" replay --rules "$ROOT/bench/rules_baseline" --input "$CSV" \
            --time-field tx_datetime --id-field transaction_id --output /dev/null 2>/dev/null; t1=$(now)
        sv=$(echo "$t1 - $t0" | bc)
        cp_=$(awk '$1 == "CPU" {print $2 + $3}' "$T/g-py.cpu"); cv=$(awk '$1 == "CPU" {print $2 + $3}' "$T/g-vigil.cpu")
        cpu_p=$(awk -v a="$cpu_p" -v b="$cp_" 'BEGIN {print (b < a) ? b : a}')
        cpu_v=$(awk -v a="$cpu_v" -v b="$cv" 'BEGIN {print (b < a) ? b : a}')
        best_p=$(awk -v a="$best_p" -v b="$sp" 'BEGIN {print (b < a) ? b : a}')
        best_v=$(awk -v a="$best_v" -v b="$sv" 'BEGIN {print (b < a) ? b : a}')
        printf '  run %d: python %.2f s (CPU %.2f), vigil %.2f s (CPU %.2f)' "$i" "$sp" "$cp_" "$sv" "$cv"; echo " (load $(cut -d' ' -f1 /proc/loadavg))"
    done
    rm -f "$CSV"
    res g_events "$n"
    res g_vigil_eps "$(awk -v n="$n" -v s="$best_v" 'BEGIN {printf "%.0f", n / s}')"
    res g_python_eps "$(awk -v n="$n" -v s="$best_p" 'BEGIN {printf "%.0f", n / s}')"
    res g_vigil_cpu_eps "$(awk -v n="$n" -v s="$cpu_v" 'BEGIN {printf "%.0f", n / s}')"
    res g_python_cpu_eps "$(awk -v n="$n" -v s="$cpu_p" 'BEGIN {printf "%.0f", n / s}')"
fi

# ---- the table --------------------------------------------------------------------------------
echo
echo "load:    $(load) (1/5/15 min) after the run"
echo
awk -v srv_runs="$SRV_RUNS" '
{ r[$1] = $2 }
function has(k) { return (k in r) && r[k] != "" && r[k] != "nan" }
function num(k) { return has(k) ? r[k] + 0 : -1 }
function k_(v) { return v < 0 ? "-" : (v >= 1e6 ? sprintf("%.2f M", v / 1e6) : sprintf("%.0f k", v / 1e3)) }
function row(name, vig, ceil, ratio, target, met) {
    printf "| %-52s | %-16s | %-18s | %-7s | %-22s | %-4s |\n", name, vig, ceil, ratio, target, met
}
function yn(c) { return c ? "yes" : "NO" }
function med(pfx, sfx,   i, v, n, x, j, t) {   # the median of the durable runs of one value
    n = 0
    for (i = 1; i <= srv_runs; i++) { v = num(pfx i sfx); if (v >= 0) x[++n] = v }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
    return n ? (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) : -1
}
function pair_med(pfx, vs, bs,   i, v, b, n, x, j, t) {   # median ratio of the runs of a vigil/bare pair
    n = 0
    for (i = 1; i <= srv_runs; i++) { v = num(pfx i vs); b = num(pfx i bs); if (v > 0 && b > 0) x[++n] = v / b }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
    return n ? (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) : -1
}
END {
    row("row", "vigil", "ceiling", "ratio", "target", "met")
    printf "|------------------------------------------------------|------------------|--------------------|---------|------------------------|------|\n"
    if (has("a_vigil_eps")) {
        v = num("a_vigil_eps"); f = num("a_floor_eps"); q = v / f
        row("a. replay rules/fraud, 1 thread, incl. gunzip", k_(v) " ev/s", k_(f) " (floor)", sprintf("%.2f", q), ">= 0.60 and >= 1.2 M/s", yn(q >= 0.60 && v >= 1.2e6))
        if (has("a_vigil_cpu_eps")) {
            v = num("a_vigil_cpu_eps"); f = num("a_floor_cpu_eps"); q = v / f
            row("   same, events per CPU-second (user + sys)", k_(v) " ev/s", k_(f) " (floor)", sprintf("%.2f", q), ">= 0.60 and >= 1.2 M/s", yn(q >= 0.60 && v >= 1.2e6))
        }
    }
    if (has("b_mix_engine_eps") || has("b_worst_full_pct") || has("b_mem_heap_bytes")) {
        v = num("b_mix_engine_eps")
        row("b. synthetic mix, 1 M keys, 20 rules, engine only", k_(v) " ev/s", "-", "-", ">= 600 k/s", yn(v >= 600000))
        w = num("b_worst_patterns_pct"); wf = num("b_worst_full_pct")
        row("   attacker / normal: 8 patterns; all 20 rules", sprintf("%.1f %%; %.1f %%", w, wf), "-", "-", ">= 50 %", yn(w >= 50 && wf >= 50))
        m = num("b_mem_heap_bytes")
        row("   idle velocity key: heap (RSS) bytes", sprintf("%.0f (%.0f)", m, num("b_mem_rss_bytes")), "-", "-", "<= 256 B", yn(m >= 0 && m <= 256))
    }
    if (has("core_1_vigil_eps")) {
        q = pair_med("core_", "_vigil_eps", "_bare_eps")
        row("c. core NATS -> engine (memory store)", k_(med("core_", "_vigil_eps")) " ev/s", k_(med("core_", "_bare_eps")) " (bare sub)", sprintf("%.2f", q), ">= 0.50", yn(q >= 0.50))
    }
    if (has("js_1_vigil_eps")) {
        q = pair_med("js_", "_vigil_eps", "_bare_eps")
        row("d. JetStream -> engine -> Redis commit", k_(med("js_", "_vigil_eps")) " ev/s", k_(med("js_", "_bare_eps")) " (bare pull)", sprintf("%.2f", q), ">= 0.70", yn(q >= 0.70))
        rt = med("js_", "_rt_per_1000")
        row("   Redis round trips per 1000 events", sprintf("%.2f", rt), "-", "-", "<= 3", yn(rt >= 0 && rt <= 3))
    }
    if (has("lat_js-redis_1_p99_ms")) {
        p = med("lat_js-redis_", "_p99_ms")
        row("e. event -> webhook p99 at 20 k/s, JetStream + Redis", sprintf("%.1f ms", p), "-", "-", "< 10 ms", yn(p >= 0 && p < 10))
    }
    if (has("low_1_commits")) {
        c = med("low_", "_commits_per_s_per_worker"); e = med("low_", "_commits_per_event")
        row("f. Redis commits at 300 ev/s (quickstart), 2 workers", sprintf("%.0f /s/worker", c), "-", "-", "<= 500 /s per worker", yn(c >= 0 && c <= 500))
        row("   commits per event", sprintf("%.2f", e), "-", "-", "(was 1.4)", "")
    }
    if (has("g_vigil_eps")) {
        v = num("g_vigil_eps"); p = num("g_python_eps"); q = v / p
        row("g. rules_baseline, uncompressed CSV, whole process", k_(v) " ev/s", k_(p) " (python)", sprintf("%.2fx", q), ">= 3x", yn(q >= 3 && num("g_counts_equal") == 1))
        if (has("g_vigil_cpu_eps")) {
            v = num("g_vigil_cpu_eps"); p = num("g_python_cpu_eps"); q = v / p
            row("   same, events per CPU-second (user + sys)", k_(v) " ev/s", k_(p) " (python)", sprintf("%.2fx", q), ">= 3x", yn(q >= 3))
        }
    }
}' "$T/results"
echo
echo "details (key value):"
sort "$T/results" | paste -sd' ' | fold -s -w 160
