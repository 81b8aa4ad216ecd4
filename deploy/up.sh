#!/usr/bin/env bash
# One command for the whole local stack: installs what is missing, builds, then runs etcd, a control
# plane, two data planes and three demo backends, applies a demo config and prints the URLs.
# Ctrl-C stops everything. Data lives in .stack/ (git-ignored); pass --fresh to start empty.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
exec node deploy/local-stack.mjs "$@"
