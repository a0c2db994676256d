#!/usr/bin/env bash
# test_rules_push.sh — `vigil rules push` against a real `vigil serve`
# (DESIGN.md §6, rules API; cli/rules_push.c).
#
# Starts `vigil serve` on a free loopback port (port 0, read from its log)
# with a scratch rules directory (one rule, `push_seed`) and data directory
# (or, with VIGIL_PUSH_TEST_STORE=redis, a redis-server of its own on a free
# loopback port: ctest runs it both ways),
# then checks, reading the server's state back with GET (tests/tools/http_json):
#  1. a directory with two one-rule files: exit 0, two "new rule, version 1"
#     lines, push_seed "on the server only (not deleted)";
#  2. the same again: exit 0, both "unchanged (version 1)";
#  3. one threshold changed: exit 0, "version 1 -> 2", the other unchanged;
#     GET says version 2;
#  4. --dry-run after another change: says "version 2 -> 3", sends nothing
#     (GET still says 2);
#  5. a directory with a file that does not compile: exit 1, its file:line
#     and "refused" in the output, the server's rules and versions as before,
#     the file's rule unknown to the server (404);
#  6. a file with two rules: exit 1, refused with "split", neither rule sent;
#  7. a source whose `version` is not greater than the latest: exit 1,
#     refused (409), the running version unchanged;
#  8. a file that compiles here but not on the server (a list only the
#     pusher has): exit 1, refused with the server's errors as file:line;
#  9. the server stopped (a closed port): exit 2, the URL named, the token
#     never printed.
# Needs no other server and no shared data.
# Usage: test_rules_push.sh BUILD_DIR (where vigil and http_json are built).
# Environment: VIGIL_PUSH_TEST_URL=http://HOST:PORT runs the checks against
# a server already running there instead of starting one (it must not have
# the rules of this test yet); VT_KEEP_TMP=1 keeps the scratch directory.
set -uo pipefail
BUILD=$(cd "${1:?usage: test_rules_push.sh BUILD_DIR}" && pwd)
VIGIL=$BUILD/vigil
HTTP_JSON=$BUILD/http_json
for tool in "$VIGIL" "$HTTP_JSON"; do
    [ -x "$tool" ] || { echo "test_rules_push: $tool is not built"; exit 1; }
done
TMP=$(mktemp -d /tmp/vigil-push-XXXXXX)
SERVER_PID=""
REDIS_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    [ -n "$REDIS_PID" ] && kill -KILL "$REDIS_PID" 2>/dev/null
    if [ "${VT_KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

failures=0
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; failures=$((failures + 1)); }

# push NAME ARGS…: run `vigil rules push ARGS…`; output (stdout and stderr)
# in $TMP/NAME.out, exit code in $rc; the output is shown.
rc=0
push() {
    local name=$1
    shift
    rc=0
    "$VIGIL" rules push "$@" >"$TMP/$name.out" 2>&1 || rc=$?
    echo "---- vigil rules push $* (exit $rc):"
    sed 's/^/     /' "$TMP/$name.out"
}
expect_rc() {   # NAME CODE
    if [ "$rc" -eq "$2" ]; then ok "$1: exit $2"; else bad "$1: exit $rc, expected $2"; fi
}
expect_line() {   # NAME EXTENDED-REGEX (a whole line)
    if grep -qE "^$2\$" "$TMP/$1.out"; then ok "$1: a line '$2'"; else bad "$1: no line matching '$2'"; fi
}
expect_text() {   # NAME FIXED-TEXT (anywhere)
    if grep -qF -- "$2" "$TMP/$1.out"; then ok "$1: says '$2'"; else bad "$1: does not say '$2'"; fi
}
# version NAME: "STATUS VERSION" of GET /v1/rules/NAME (VERSION empty on 404)
version() {
    "$HTTP_JSON" "$URL/v1/rules/$1" version | paste -sd' ' | sed 's/ *$//'
}
expect_version() {   # WHAT NAME "STATUS[ VERSION]"
    local got
    got=$(version "$2")
    if [ "$got" = "$3" ]; then ok "$1: GET /v1/rules/$2 -> $3"; else bad "$1: GET /v1/rules/$2 -> '$got', expected '$3'"; fi
}
# the server's rules as sorted "name version" lines
server_rules() {
    local out names versions
    out=$("$HTTP_JSON" "$URL/v1/rules" 'rules[].name') || return 1
    names=$(echo "$out" | tail -n +2)
    for n in $names; do echo "$n $("$HTTP_JSON" "$URL/v1/rules/$n" version | tail -n +2)"; done | sort
}

# ---- the server -----------------------------------------------------------------
mkdir -p "$TMP/served" "$TMP/data"
cat >"$TMP/served/seed.lua" <<'EOF'
rule { name = "push_seed", key = "card", pattern = begin("s"):where{ type = "seed" } }
EOF
if [ -n "${VIGIL_PUSH_TEST_URL:-}" ]; then
    URL=${VIGIL_PUSH_TEST_URL%/}
    echo "using the server at $URL"
else
    store=(--data-dir "$TMP/data")
    if [ "${VIGIL_PUSH_TEST_STORE:-memory}" = redis ]; then   # a redis-server of our own
        for _ in $(seq 50); do
            rport=$((20000 + RANDOM % 10000))   # below the ephemeral range (32768+)
            (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null || break   # nothing listens there
        done
        redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
        REDIS_PID=$!
        for _ in $(seq 100); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
        store=(--redis "redis://127.0.0.1:$rport" --data-dir "")
        echo "redis-server on port $rport"
    fi
    "$VIGIL" serve --rules "$TMP/served" --listen 127.0.0.1:0 --workers 1 --idle-timeout 0 \
        "${store[@]}" >"$TMP/serve.log" 2>&1 &
    SERVER_PID=$!
    port=""
    for _ in $(seq 200); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/serve.log" 2>/dev/null | head -1 | sed 's/.*://')
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "FAIL - vigil serve did not start:"; sed 's/^/     /' "$TMP/serve.log"
        exit 1
    fi
    URL=http://127.0.0.1:$port
    echo "vigil serve at $URL (pid $SERVER_PID)"
fi

# ---- 1. two new rules ------------------------------------------------------------
mkdir -p "$TMP/a"
cat >"$TMP/a/count.lua" <<'EOF'
rule {
  name     = "push_count",
  severity = "high",
  key      = "card",
  where    = { type = "tx" },
  window   = sliding("1h"),
  when     = ge(count(), 4),
}
EOF
cat >"$TMP/a/pattern.lua" <<'EOF'
rule {
  name    = "push_pattern",
  key     = "card",
  pattern = begin("probe"):where{ type = "auth", amount = lt(2) }:times(3)
            :followed_by("cashout"):where{ type = "auth", amount = gt(500) },
  within  = "10m",
}
EOF
push new "$TMP/a" --server "$URL"
expect_rc new 0
expect_line new "push_count: new rule, version 1"
expect_line new "push_pattern: new rule, version 1"
expect_line new "push_seed: on the server only \(not deleted\)"
expect_version new push_count "200 1"
expect_version new push_pattern "200 1"

# ---- 2. nothing changed ----------------------------------------------------------
push again "$TMP/a" --server "$URL/"
expect_rc again 0
expect_line again "push_count: unchanged \(version 1\)"
expect_line again "push_pattern: unchanged \(version 1\)"
expect_version again push_count "200 1"

# ---- 3. a new threshold ----------------------------------------------------------
sed -i 's/ge(count(), 4)/ge(count(), 5)/' "$TMP/a/count.lua"
push changed "$TMP/a" --server "$URL"
expect_rc changed 0
expect_line changed "push_count: version 1 -> 2"
expect_line changed "push_pattern: unchanged \(version 1\)"
expect_version changed push_count "200 2"
expect_version changed push_pattern "200 1"

# ---- 4. a dry run sends nothing --------------------------------------------------
cp "$TMP/a/count.lua" "$TMP/count.lua.v2"
sed -i 's/ge(count(), 5)/ge(count(), 6)/' "$TMP/a/count.lua"
push dry "$TMP/a" --server "$URL" --dry-run
expect_rc dry 0
expect_text dry "push_count: version 2 -> 3"
expect_text dry "dry run"
expect_version dry push_count "200 2"
cp "$TMP/count.lua.v2" "$TMP/a/count.lua"

# ---- 5. a file that does not compile ---------------------------------------------
before=$(server_rules)
mkdir -p "$TMP/b"
cp "$TMP/a/count.lua" "$TMP/a/pattern.lua" "$TMP/b/"
printf 'rule { name = "push_bad", key = "card",\n  where = { type = "tx" },\n  when = ge(count(), 4  window = sliding("1h") }\n' \
    >"$TMP/b/bad.lua"
push broken "$TMP/b" --server "$URL"
expect_rc broken 1
expect_text broken "$TMP/b/bad.lua: refused"
expect_text broken "$TMP/b/bad.lua:3:"
expect_line broken "push_count: unchanged \(version 2\)"
after=$(server_rules)
if [ -n "$before" ] && [ "$before" = "$after" ]; then
    ok "broken: the server's rules and versions are unchanged"
else
    bad "broken: the server's rules changed: before [$before] after [$after]"
fi
expect_version broken push_bad "404"

# ---- 6. two rules in one file ----------------------------------------------------
mkdir -p "$TMP/c"
cat >"$TMP/c/two.lua" <<'EOF'
rule { name = "push_two_a", key = "card", pattern = begin("a"):where{ type = "a" } }
rule { name = "push_two_b", key = "card", pattern = begin("b"):where{ type = "b" } }
EOF
push two "$TMP/c" --server "$URL"
expect_rc two 1
expect_text two "$TMP/c/two.lua: refused"
expect_text two "split"
expect_version two push_two_a "404"
expect_version two push_two_b "404"

# ---- 7. a version that is not greater than the latest ----------------------------
mkdir -p "$TMP/d"
sed -e 's/ge(count(), 5)/ge(count(), 7)/' -e 's/^  name     = "push_count",/  name     = "push_count", version = 2,/' \
    "$TMP/a/count.lua" >"$TMP/d/count.lua"
grep -q 'version = 2' "$TMP/d/count.lua" || bad "old-version: the test file declares version 2"
push oldversion "$TMP/d" --server "$URL"
expect_rc oldversion 1
expect_line oldversion "push_count: refused: .+"
expect_version oldversion push_count "200 2"

# ---- 8. compiles here, not on the server -----------------------------------------
mkdir -p "$TMP/e/lists"
echo "m-123" >"$TMP/e/lists/push_test_only_here.txt"
cat >"$TMP/e/listed.lua" <<'EOF'
rule { name = "push_listed", key = "card",
  pattern = begin("a"):where{ merchant = in_list("push_test_only_here") } }
EOF
push serverside "$TMP/e" --server "$URL"
expect_rc serverside 1
expect_line serverside "push_listed: refused: .+"
if grep -qE "^  $TMP/e/listed.lua:[0-9]+: " "$TMP/serverside.out"; then
    ok "serverside: the server's errors as file:line"
else
    bad "serverside: no '  $TMP/e/listed.lua:LINE: …' line"
fi
expect_version serverside push_listed "404"

# ---- 9. no server ----------------------------------------------------------------
TOKEN="push-test-secret-$RANDOM$RANDOM"
if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    closed=$URL
else
    closed=http://127.0.0.1:1
fi
push closed "$TMP/a" --server "$closed" --token "$TOKEN"
expect_rc closed 2
expect_text closed "cannot reach the server at $closed"
if grep -qF -- "$TOKEN" "$TMP"/*.out; then bad "the token is printed"; else ok "the token is never printed"; fi

if [ "$failures" -ne 0 ]; then
    echo "test_rules_push: $failures FAILED"
    [ -n "$SERVER_PID" ] && { echo "---- vigil serve log (tail):"; tail -n 30 "$TMP/serve.log" | sed 's/^/     /'; }
    exit 1
fi
echo "test_rules_push: all passed"
