#!/usr/bin/env bash
# test_spec.sh — docs/openapi.yaml is a valid OpenAPI 3.1 document, run by
# ctest (openapi/test_spec) as `bash test_spec.sh`. validate.mjs checks it
# with @seriousme/openapi-schema-validator against the official 3.1 schemas,
# compiles every schema with ajv (JSON Schema 2020-12, strict), checks every
# example against its schema and vigil's conventions (x-vigil-role on every
# operation, 401/403 where a role is needed, problem+json errors).
#
# node_modules is installed on first use (npm ci from package-lock.json: the
# versions are pinned there).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
    echo "test_spec: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

command -v node >/dev/null || fail "node is not installed"
bash "$HERE/install.sh" || fail "npm could not install the validators"
node "$HERE/validate.mjs"
