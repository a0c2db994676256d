#!/usr/bin/env bash
# deps.sh — install what vigil needs to build, test and run on Debian 12:
# the libraries of DESIGN.md §10, the servers the tests start (nats-server,
# redis-server; redis-cli for deploy/quickstart.sh; the openssl CLI that makes
# test_transport's certificate), Chromium and Node for the dashboard test,
# promtool (Debian's prometheus package) for the metrics checks, dpkg-dev and
# systemd for the package test. Idempotent: skips apt-get when everything is there.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git ca-certificates clang libclang-rt-14-dev
      libhyperscan-dev libmicrohttpd-dev libnats-dev libhiredis-dev liblua5.4-dev
      libcunit1-dev libcurl4-openssl-dev libcjson-dev libssl-dev zlib1g-dev libjemalloc-dev
      nats-server redis-server redis-tools util-linux openssl
      prometheus   # promtool: tests check /metrics and the alert rules with it
      dpkg-dev systemd)   # cpack's dpkg-shlibdeps; systemd-analyze verify of the unit
[ "${VIGIL_NO_BROWSER:-0}" = 1 ] || PKGS+=(chromium)
command -v node >/dev/null && command -v npm >/dev/null || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "deps: installing ${missing[*]}" >&2
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
