#!/usr/bin/env bash
# test_dashboard.sh — end-to-end test of vigil's live alert dashboard in
# headless Chromium, run by ctest as `bash test_dashboard.sh <vigil binary>`.
#
# It starts `<vigil> serve` on a free loopback port with four rules
# (big_amount: a sliding count; card_testing: a pattern; compromised_terminal:
# a window counting fraud reports; fraud_report: one alert per report, so the
# reports' evidence is in the ring; memory store, the default), waits for it
# to answer, and runs dashboard.test.mjs (playwright-core driving
# /usr/bin/chromium): live alerts, counts equal to the server's after a known
# feed, the chart, filters and pages, an alert's evidence and a window
# alert's contributing events, the key view, health tiles equal to
# /v1/stats, triage and precision, a mode toggle, 390 px and 1440 px.
# Screenshots go to tests/artifacts/dashboard*.png. Then it starts a second
# server with viewer, analyst and ingest tokens and runs it again with the
# sign-in checks (the page asks for a viewer token once and keeps it in
# sessionStorage; a viewer is refused rule changes and triage, an analyst
# is not), and greps its log for the tokens. The server is always killed on
# exit. Prints a final "N passed, M failed" line; exits non-zero on any
# failure.
#
# node_modules is installed on first use (npm ci from package-lock.json,
# falling back to npm install); set CHROMIUM to use another browser binary.
set -u

VIGIL=${1:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARTIFACTS="$ROOT/tests/artifacts"

fail() {
    echo "test_dashboard: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[ -n "$VIGIL" ] || fail "usage: bash test_dashboard.sh <path-to-vigil-binary>"
[ -x "$VIGIL" ] || fail "vigil binary not found or not executable: $VIGIL"
VIGIL=$(cd "$(dirname "$VIGIL")" && pwd)/$(basename "$VIGIL")   # we cd before running it
command -v node >/dev/null || fail "node is not installed"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || fail "chromium not found at ${CHROMIUM:-/usr/bin/chromium}"

if [ ! -d "$HERE/node_modules/playwright-core" ]; then
    echo "test_dashboard: installing playwright-core in $HERE"
    (cd "$HERE" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }) >&2 \
        || fail "npm could not install playwright-core"
fi

TMP=$(mktemp -d /tmp/vigil-dash-XXXXXX) || fail "mktemp failed"
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$TMP/rules" "$ARTIFACTS"
cat > "$TMP/rules/big_amount.lua" <<'EOF'
-- big_amount.lua — the dashboard test's rule: any payment over 100 alerts.
rule {
  name        = "big_amount",
  description = "A single amount over 100 on a card",
  severity    = "high",
  key         = "card_id",
  where       = { amount = gt(100) },
  window      = sliding("1h"),
  when        = ge(count(), 1),
}
EOF
cat > "$TMP/rules/card_testing.lua" <<'EOF'
-- card_testing.lua — two micro-authorisations, then a bigger one, on a card.
rule {
  name     = "card_testing",
  severity = "critical",
  key      = "card_id",
  pattern  = begin("probe"):where{ type = "auth", amount = lt(2) }:times(2)
             :followed_by("cashout"):where{ type = "auth", amount = gt(50) },
  within   = "10m",
}
EOF
cat > "$TMP/rules/fraud_report.lua" <<'EOF'
-- fraud_report.lua — a customer reported fraud (its alerts carry the reports as evidence).
rule {
  name     = "fraud_report",
  severity = "low",
  key      = "customer_id",
  where    = { type = "report" },
  window   = sliding("1h"),
  when     = ge(count(), 1),
}
EOF
cat > "$TMP/rules/compromised_terminal.lua" <<'EOF'
-- compromised_terminal.lua — a transaction on a terminal that two customers reported.
rule {
  name     = "compromised_terminal",
  severity = "high",
  key      = "terminal_id",
  window   = sliding("28d"),
  when     = all_of{ eq(e.type, "tx"), ge(distinct("customer_id", { type = "report" }), 2) },
}
EOF

# A port that was free a moment ago; retry with a new one if vigil cannot bind.
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# start_vigil [extra serve args...]: vigil serve on a free port; sets URL, PID, LOG
start_vigil() {
    URL=""
    for attempt in 1 2 3; do
        PORT=$(free_port) || fail "could not find a free port"
        LOG="$TMP/vigil-$PORT.log"
        # run from a fresh directory so that a default ./rules or snapshot never leaks in
        RUN="$TMP/run-$PORT"
        mkdir -p "$RUN"
        (cd "$RUN" && exec "$VIGIL" serve --listen "127.0.0.1:$PORT" --rules "$TMP/rules" "$@") >"$LOG" 2>&1 &
        PID=$!
        for _ in $(seq 1 150); do      # 15 s
            if ! kill -0 "$PID" 2>/dev/null; then break; fi
            if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))' \
                    "http://127.0.0.1:$PORT/" 2>/dev/null; then
                URL="http://127.0.0.1:$PORT"
                break
            fi
            sleep 0.1
        done
        [ -n "$URL" ] && return 0
        echo "test_dashboard: vigil serve did not come up on port $PORT (attempt $attempt); its log:" >&2
        tail -n 30 "$LOG" >&2
        kill -KILL "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""
    done
    fail "vigil serve never answered on /"
}

stop_vigil() {
    kill -TERM "$PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=""
}

# 1. no tokens (loopback): the page opens straight away; screenshots for humans
start_vigil
node "$HERE/dashboard.test.mjs" --url "$URL" --screenshot "$ARTIFACTS/dashboard.png"
rc=$?
if [ $rc -ne 0 ]; then
    echo "test_dashboard: vigil log tail:" >&2
    tail -n 40 "$LOG" >&2
    echo "0 passed, 2 failed"
    exit 1
fi
stop_vigil

# 2. with tokens: the page asks for a viewer token once and keeps it in the tab
VIEWER=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
INGEST=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ANALYST=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'return { tokens = { { name = "ops", token = "%s", role = "viewer" },\n                    { name = "shop", token = "%s", role = "ingest" },\n                    { name = "alice", token = "%s", role = "analyst" } } }\n' \
    "$VIEWER" "$INGEST" "$ANALYST" > "$TMP/vigil.conf.lua"
start_vigil --config "$TMP/vigil.conf.lua"
node "$HERE/dashboard.test.mjs" --url "$URL" --viewer-token "$VIEWER" --ingest-token "$INGEST" --analyst-token "$ANALYST"
rc=$?
if [ $rc -ne 0 ]; then
    echo "test_dashboard: vigil log tail (with tokens):" >&2
    tail -n 40 "$LOG" >&2
    echo "1 passed, 1 failed"
    exit 1
fi
if grep -qF -e "$VIEWER" -e "$INGEST" -e "$ANALYST" "$LOG"; then
    echo "test_dashboard: a token appears in the server's log" >&2
    echo "1 passed, 1 failed"
    exit 1
fi
echo "2 passed, 0 failed"
exit 0
