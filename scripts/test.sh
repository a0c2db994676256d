#!/usr/bin/env bash
# test.sh — the whole test suite, as CI runs it (.ci/run calls this):
# check the include layers, file sizes and that docs/architecture.md names
# every production file (scripts/check_layers.sh, check_sizes.sh,
# check_architecture.sh), install dependencies, build (RelWithDebInfo),
# run every ctest suite (unit, integration against real nats-server/redis-server/webhook receiver, the
# dashboard in headless Chromium, docs/openapi.yaml validated and checked against a real
# server — tests/openapi, npm ci from its package-lock.json), then build the unit tests with
# AddressSanitizer + UndefinedBehaviorSanitizer and run them again.
# Tests that need ../shared/data skip outside CI when it is absent.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# structure first (bash + coreutils, seconds): no include cycle or wrong-way
# include between units, no oversized file or unit (issue 10)
bash scripts/check_layers.sh
bash scripts/check_sizes.sh
bash scripts/check_architecture.sh
bash scripts/deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure)

# sanitizers: the unit tests with leak checking, then the integration tests
# against the sanitized server binary (leak checks off: servers are killed)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVIGIL_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -L unit -LE nobuild)   # layers/test_layers reads sources only: once is enough
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -L integration -LE cluster)   # the cluster test runs once (above)
# fuzz regression: every libFuzzer target once over its kept corpus (no fuzzing)
echo "== fuzz corpora (tests/fuzz/regress.sh)"
bash tests/fuzz/regress.sh
echo "test.sh: all suites passed"
