#!/usr/bin/env bash
# install.sh — the OpenAPI tests' npm packages (validator, ajv, yaml) into
# tests/openapi/node_modules, once: `npm ci` from package-lock.json, so the
# versions are the pinned ones. test_spec.sh and test_contract.sh call it.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE" || exit 1
if [ -f node_modules/.vigil-installed ] && [ node_modules/.vigil-installed -nt package-lock.json ]; then
    exit 0
fi
echo "tests/openapi: npm ci in $HERE" >&2
npm ci --no-audit --no-fund >&2 || exit 1
touch node_modules/.vigil-installed
