#!/usr/bin/env bash
# synth.sh — the synthetic benchmark of issue 3 (bench/synth.c): the engine
# in-process on one thread with the memory store, on a generated stream of
# 1 M users (fixed seed). Runs every mode of bench_synth one after the other
# — mix (20 rules), regex (1 vs 50 regexes), latency (per-event histogram),
# memory (bytes per idle velocity key), worst (an attacker key piling up
# partial matches) and growth (10 M events; the longest, last) — keeps each
# mode's full output in $OUT, and prints a summary table against the
# targets. Rates are events per CPU-second of this thread (the VM is shared;
# wall-clock rates and the CPU share are in the logs).
#
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-bench -j2 --target bench_synth
#   bash bench/synth.sh                      # ~6-10 min on the 2-core VM
#   SKIP_GROWTH=1 MODES="mix latency" bash bench/synth.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BENCH_SYNTH:-$ROOT/build-bench/bench_synth}
OUT=${OUT:-$(mktemp -d /tmp/vigil-synth.XXXXXX)}
MODES=${MODES:-"mix regex latency memory worst growth"}
ARGS=(--rules-dir "$ROOT/bench/rules_synth" --seed "${SEED:-42}" --keys "${KEYS:-1M}")
[ -x "$BIN" ] || { echo "synth: build it first: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2 --target bench_synth"; exit 1; }
mkdir -p "$OUT"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
if [ -n "${VIGIL_COMMIT:-}" ]; then commit=$VIGIL_COMMIT   # e.g. a build of a `git archive` snapshot
else commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- engine lua 2>/dev/null || echo ' + uncommitted engine/lua changes')"; fi
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); commit $commit"
echo "binary:  $BIN; logs in $OUT"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
for m in $MODES; do
    [ "$m" = growth ] && [ -n "${SKIP_GROWTH:-}" ] && continue
    extra=()
    [ "$m" = growth ] && extra=(--events "${GROWTH_EVENTS:-10M}")
    t0=$(date +%s.%N)
    "$BIN" --mode "$m" "${ARGS[@]}" "${extra[@]}" > "$OUT/$m.log" 2>&1 || { echo "synth: mode $m failed:"; tail -5 "$OUT/$m.log"; exit 1; }
    t1=$(date +%s.%N)
    printf '  %-8s %6.1f s wall, load %s\n' "$m" "$(echo "$t1 - $t0" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
done
echo

# RESULT name value lines of every log -> one table
cat "$OUT"/*.log | awk '$1 == "RESULT" { r[$2] = $3 }
function has(k) { return (k in r) }
function f(k, fmt) { return has(k) ? sprintf(fmt, r[k]) : "—" }
function ok(cond) { return cond ? "yes" : "NO" }
function row(item, measured, target, pass) { printf "| %-56s | %-40s | %-12s | %-4s |\n", item, measured, target, pass }
END {
    printf "| %-56s | %-40s | %-12s | %-4s |\n", "item", "measured", "target", "met"
    printf "|%s|%s|%s|%s|\n", "----------------------------------------------------------", "------------------------------------------", "--------------", "------"
    if (has("mix_pipeline_eps")) {
        row(sprintf("1. mix, %d rules, %.0f k keys: decode + engine", r["mix_rules"], r["mix_keys"] / 1000), f("mix_pipeline_eps", "%.0f ev/s"), ">= 500 k/s", ok(r["mix_pipeline_eps"] >= 500000))
        row("   engine only (prebuilt events)", f("mix_engine_eps", "%.0f ev/s"), ">= 500 k/s", ok(r["mix_engine_eps"] >= 500000))
        row("   decode only (same JSON lines, no engine)", f("mix_decode_eps", "%.0f ev/s"), "", "")
        row("   cold phase (every event creates its key): engine", f("mix_seed_engine_eps", "%.0f ev/s"), "", "")
        row("   alerts (rules that fired)", sprintf("%d (%d of %d rules)", r["mix_alerts"], r["mix_rules_fired"], r["mix_rules"]), "> 0", ok(r["mix_alerts"] > 0))
    }
    if (has("regex_1_regex_engine_eps")) {
        row("2. 1 regex on email (1 rule): engine", f("regex_1_regex_engine_eps", "%.0f ev/s"), "", "")
        row("   50 regexes on email (50 rules): engine", f("regex_50_regex_engine_eps", "%.0f ev/s"), "", "")
        row("   same rules, literal equality instead: 1 / 50", sprintf("%.0f / %.0f ev/s", r["regex_1_literal_engine_eps"], r["regex_50_literal_engine_eps"]), "", "")
        row("   regex rules - literal rules: 1 / 50 (ns/event)", sprintf("%+.0f / %+.0f ns", r["regex_scan_ns_1"], r["regex_scan_ns_50"]), "one scan", "")
        row("   Hyperscan alone, one database: 1 / 50 patterns", sprintf("%.0f / %.0f ns per scan", r["regex_hs_ns_1"], r["regex_hs_ns_50"]), "", "")
    }
    if (has("lat_p99_us")) {
        row("3. feed latency p50 / p99 (warm, 20 rules)", sprintf("%.2f / %.2f us", r["lat_p50_us"], r["lat_p99_us"]), "p99 < 20 us", ok(r["lat_p99_us"] < 20))
        row("   p99.9 / max", sprintf("%.1f / %.0f us", r["lat_p999_us"], r["lat_max_us"]), "", "")
        row("   thread CPU time p99 / p99.9 / max (no preemption)", sprintf("%.2f / %.1f / %.0f us", r["lat_cpu_p99_us"], r["lat_cpu_p999_us"], r["lat_cpu_max_us"]), "", "")
        row("   cold phase p99 / max (new keys, table growth)", sprintf("%.2f / %.0f us", r["lat_seed_p99_us"], r["lat_seed_max_us"]), "", "")
    }
    if (has("mem_idle_key_heap_bytes")) {
        row("4. idle velocity key (1 sliding 1 h count): heap", f("mem_idle_key_heap_bytes", "%.0f bytes/key"), "<= 256 B", ok(r["mem_idle_key_heap_bytes"] <= 256))
        row("   same, RSS delta / keys", f("mem_idle_key_rss_bytes", "%.0f bytes/key"), "<= 256 B", ok(r["mem_idle_key_rss_bytes"] <= 256))
        row("   after expiry (1 h horizon passed): keys, heap", sprintf("%d keys, %.1f MiB", r["mem_after_expiry_keys"], r["mem_after_expiry_heap_mib"]), "", "")
    }
    if (has("growth_1M_rss_mib"))
        row("   mix at 1 M events: RSS, keys, runs", sprintf("%.0f MiB, %d keys, %d runs", r["growth_1M_rss_mib"], r["growth_1M_keys"], r["growth_1M_runs"]), "", "")
    if (has("growth_end_rss_mib")) {
        row(sprintf("   mix at %g M events: RSS, keys, runs", r["growth_end_events"] / 1e6), sprintf("%.0f MiB, %d keys, %d runs", r["growth_end_rss_mib"], r["growth_end_keys"], r["growth_end_runs"]), "", "")
        if (has("growth_stopped_at_events")) row("   growth stopped early (RSS limit) at", f("growth_stopped_at_events", "%.0f events"), "", "")
    }
    if (has("worst_patterns_ratio_pct")) {
        row("5. normal stream, 8 mix patterns + 3 pile-ups: engine", f("worst_patterns_normal_engine_eps", "%.0f ev/s"), "", "")
        row("   attacker, 8 mix patterns + 3 pile-ups: rate", f("worst_patterns_ratio_pct", "%.1f %% of normal"), ">= 50 %", ok(r["worst_patterns_ratio_pct"] >= 50))
        row("   attacker alone: its runs at most; evicted", sprintf("%d (max_runs 64 per rule); %d", r["worst_patterns_attacker_runs_max"], r["worst_patterns_attacker_runs_evicted"]), "bounded", ok(r["worst_patterns_attacker_runs_max"] <= 64 * 11))
        row("   attacker feed p50 / p99 / max", sprintf("%.1f / %.1f / %.0f us", r["worst_patterns_attack_attacker_p50_us"], r["worst_patterns_attack_attacker_p99_us"], r["worst_patterns_attack_attacker_max_us"]), "", "")
        row("   normal stream, all 20 mix rules + 3 pile-ups: engine", f("worst_full_normal_engine_eps", "%.0f ev/s"), "", "")
        row("   attacker, all 20 mix rules + 3 pile-ups: rate", f("worst_full_ratio_pct", "%.1f %% of normal"), ">= 50 %", ok(r["worst_full_ratio_pct"] >= 50))
        row("   attacker feed p50 / p99 (all rules)", sprintf("%.0f / %.0f us", r["worst_full_attack_attacker_p50_us"], r["worst_full_attack_attacker_p99_us"]), "", "")
    }
}'
