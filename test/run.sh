#!/usr/bin/env bash
# One command for every test: installs what is missing, builds, type-checks the tests, then runs the
# unit tests and the end-to-end tests (real etcd, control plane, data planes and backends). Lint and
# format are checked first (Biome): a change that does not pass them fails here, not in review.
# Then the fuzzers run for 8 s each, the data plane's tests run again on Node 22 and 24, and the
# HTTP/2 fuzzers again on Node 24.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
pnpm exec biome ci .
pnpm exec tsc -p tsconfig.tests.json
pnpm exec vitest run "$@"
# Coverage-guided fuzzing of every network-facing parser, bounded: 8 s per target, about a minute
# for the seven (each starts from its committed corpus; long runs are by hand, test/fuzz/README.md).
LB_FUZZ_SECONDS="${LB_FUZZ_SECONDS:-8}" bash test/fuzz/bounded.sh
# The data plane's tests on the other Node majors in package.json's engines (test/other-nodes.sh).
bash test/other-nodes.sh "$@"
# The HTTP/2 fuzzers again on Node 24, the runtime the image ships: node's HTTP/2 under them is
# another nghttp2 and other code than Node 20's (Node 20 had aborts of its own that 24 has not),
# and it runs http2-server about ten times faster (800 against 60 inputs a second).
LB_FUZZ_SECONDS="${LB_FUZZ_SECONDS:-8}" bash deploy/with-node.sh image bash test/fuzz/bounded.sh http2-server http2-upstream
