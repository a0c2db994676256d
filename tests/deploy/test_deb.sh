#!/usr/bin/env bash
# test_deb.sh — the Debian package, as ops install it: build it with CPack
# from the build directory, install it with dpkg -i, and check that
#   - `vigil --version` (the installed /usr/bin/vigil) prints the version and commit;
#   - `vigil check /usr/share/vigil/rules/fraud` compiles the example rules;
#   - the installed /etc/vigil/vigil.conf.lua with /etc/vigil/rules loads
#     (`vigil serve` started from it answers /readyz, then stops on SIGTERM);
#   - `systemd-analyze verify` accepts the installed unit;
# then remove the package again. Needs root (or sudo) for dpkg; without it
# the test is skipped with a message, except under CI=true.
# Usage: bash test_deb.sh <build dir>      (run by ctest as deploy/test_deb)
set -u
BUILD=${1:?usage: test_deb.sh <build dir>}
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        [ "${CI:-}" = true ] && fail "dpkg -i needs root or passwordless sudo"
        echo "test_deb: SKIP: needs root or passwordless sudo to install the package"; exit 0
    fi
fi
for c in cpack dpkg systemd-analyze curl; do command -v "$c" >/dev/null || fail "$c is not installed (scripts/deps.sh)"; done

cd "$BUILD" || fail "no build directory $BUILD"
rm -f vigil_*.deb
cpack -G DEB >cpack.log 2>&1 || { tail -20 cpack.log >&2; fail "cpack -G DEB failed"; }
DEB=$(ls vigil_*_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || fail "cpack made no .deb"
dpkg-deb -I "$DEB" | grep -q "Depends: .*libmicrohttpd" || fail "the package's dependencies lack libmicrohttpd"

cleanup() { $SUDO dpkg -P vigil >/dev/null 2>&1; [ -n "${PID:-}" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "${TMP:-/nonexistent}"; }
trap cleanup EXIT
$SUDO dpkg -i "$DEB" >dpkg.log 2>&1 || { cat dpkg.log >&2; fail "dpkg -i $DEB failed"; }

V=$(/usr/bin/vigil --version) || fail "vigil --version failed"
echo "$V" | grep -Eq '^vigil [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]{7,}' || fail "unexpected --version: $V"
/usr/bin/vigil check /usr/share/vigil/rules/fraud >check.log 2>&1 || { cat check.log >&2; fail "vigil check of the installed rules failed"; }
for f in /usr/lib/systemd/system/vigil.service /etc/vigil/vigil.conf.lua /usr/share/doc/vigil/operations.md \
         /usr/share/vigil/grafana/vigil.json /usr/share/vigil/prometheus/alerts.yml; do
    [ -f "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}\n' vigil | grep -q /etc/vigil/vigil.conf.lua || fail "/etc/vigil/vigil.conf.lua is not a conffile"
systemd-analyze verify /usr/lib/systemd/system/vigil.service >verify.log 2>&1 || { cat verify.log >&2; fail "systemd-analyze verify"; }

# the installed config runs (listen moved to a free port; state in a scratch dir)
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$TMP" && exec /usr/bin/vigil serve --config /etc/vigil/vigil.conf.lua --listen "127.0.0.1:$PORT" \
     --data-dir "$TMP/data") >"$TMP/serve.log" 2>&1 &
PID=$!
ok=0
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && { ok=1; break; }
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
[ $ok = 1 ] || { cat "$TMP/serve.log" >&2; fail "vigil serve with /etc/vigil/vigil.conf.lua never became ready"; }
grep -q "5 rules from /etc/vigil/rules" "$TMP/serve.log" || { cat "$TMP/serve.log" >&2; fail "the installed rules were not loaded"; }
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=""
[ $rc = 0 ] || fail "vigil serve exited $rc on SIGTERM"
echo "test_deb: ok ($DEB: $V)"
