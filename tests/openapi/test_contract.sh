#!/usr/bin/env bash
# test_contract.sh — the OpenAPI contract test, run by ctest
# (integration/test_openapi_contract) as `bash test_contract.sh <vigil binary>`.
#
# It starts `<vigil> serve` on a free loopback port with tokens of every role
# (ingest, viewer, analyst, admin) and a metrics_token, and a rules directory
# holding one rule (big_amount: any amount over 100 on a card alerts), waits
# for /healthz, and runs contract.mjs: every operation of docs/openapi.yaml
# answers a valid request as the spec says (status, content type, JSON body
# against its schema, the role it needs), and every route the source
# registers (vigil_http_route) is in the spec and answers. The server is
# always stopped on exit. Prints a final "N passed, M failed" line; exits
# non-zero on any failure.
set -u

VIGIL=${1:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
    echo "test_contract: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[ -n "$VIGIL" ] || fail "usage: bash test_contract.sh <path-to-vigil-binary>"
[ -x "$VIGIL" ] || fail "vigil binary not found or not executable: $VIGIL"
VIGIL=$(cd "$(dirname "$VIGIL")" && pwd)/$(basename "$VIGIL")   # we cd before running it
command -v node >/dev/null || fail "node is not installed"
bash "$HERE/install.sh" || fail "npm could not install the validators"

TMP=$(mktemp -d /tmp/vigil-openapi-XXXXXX) || fail "mktemp failed"
PID=""
stop_vigil() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    PID=""
}
cleanup() {
    stop_vigil
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$TMP/rules" "$TMP/run"
cat > "$TMP/rules/big_amount.lua" <<'LUA'
-- big_amount.lua — the contract test's rule: any payment over 100 alerts.
rule {
  name        = "big_amount",
  description = "A single amount over 100 on a card",
  severity    = "high",
  key         = "card_id",
  where       = { amount = gt(100) },
  window      = sliding("1h"),
  when        = ge(count(), 1),
}
LUA

tok() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
INGEST=$(tok) VIEWER=$(tok) ANALYST=$(tok) ADMIN=$(tok) METRICS=$(tok)
cat > "$TMP/vigil.conf.lua" <<CONF
return {
  tokens = {
    { name = "shop",  token = "$INGEST",  role = "ingest" },
    { name = "ops",   token = "$VIEWER",  role = "viewer" },
    { name = "alice", token = "$ANALYST", role = "analyst" },
    { name = "root",  token = "$ADMIN",   role = "admin" },
  },
  metrics_token = "$METRICS",
}
CONF
printf '{"ingest":"%s","viewer":"%s","analyst":"%s","admin":"%s","metrics":"%s"}\n' \
    "$INGEST" "$VIEWER" "$ANALYST" "$ADMIN" "$METRICS" > "$TMP/tokens.json"

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

URL=""
for attempt in 1 2 3; do
    PORT=$(free_port) || fail "could not find a free port"
    LOG="$TMP/vigil-$PORT.log"
    (cd "$TMP/run" && exec "$VIGIL" serve --config "$TMP/vigil.conf.lua" --listen "127.0.0.1:$PORT" \
        --rules "$TMP/rules") >"$LOG" 2>&1 &
    PID=$!
    for _ in $(seq 1 150); do      # 15 s
        kill -0 "$PID" 2>/dev/null || break
        if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))' \
                "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
            URL="http://127.0.0.1:$PORT"
            break
        fi
        sleep 0.1
    done
    [ -n "$URL" ] && break
    echo "test_contract: vigil serve did not come up on port $PORT (attempt $attempt); its log:" >&2
    tail -n 30 "$LOG" >&2
    stop_vigil
done
[ -n "$URL" ] || fail "vigil serve never answered /healthz"

node "$HERE/contract.mjs" --url "$URL" --tokens "$TMP/tokens.json"
rc=$?
if [ $rc -ne 0 ]; then
    echo "test_contract: vigil log tail:" >&2
    tail -n 40 "$LOG" >&2
fi
exit $rc
