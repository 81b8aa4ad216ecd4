#!/usr/bin/env bash
# Every benchmark of the data plane, one after the other, on this machine:
#   1. proxy throughput side by side with its peers (proxy.sh → ../shared/bench/peers.sh), 1 worker,
#      and CPU time per request against the lean node+undici proxy, in rounds (cpu-per-request.mjs)
#   2. multi-core scaling, --workers 1 vs 2 (scaling.mjs)
#   3. streaming memory: 64 clients × 1 MiB bodies for 30 s (memory.mjs)
#   4. idle cost: 10,000 idle keep-alive connections (idle.mjs)
#   5. the routing decision (match + pick) at 10,000 backends (routing.mjs)
#   6. HTTP/2, gRPC and WebSocket side by side with nginx (protocols.sh)
#   7. what metrics cost: the request path's updates, and quiet against observed (metrics-cost.mjs)
# Benchmarks, not tests: they print figures and ratios and assert nothing. Run on a quiet machine
# (`uptime`): other load skews the ratios. Loopback only. About 10 minutes.
#   bash bench/run-all.sh [-d SECONDS]      (-d: wrk duration per proxy; default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
D=8
while getopts "d:" o; do case $o in d) D=$OPTARG;; *) exit 2;; esac; done
# 10,000 client sockets in the idle bench, and as many on the data plane side.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bash deploy/bootstrap.sh >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores $(uname -m) node $(node --version), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo; echo "## 1. proxy throughput vs peers (bash bench/proxy.sh -d $D)"
bash bench/proxy.sh -d "$D" 2> >(grep -v -E 'raft|FSTDEP|trace-warnings|project ready|WARNING' >&2)
echo; echo "## 1b. CPU per request vs the lean proxy (node bench/cpu-per-request.mjs)"
node bench/cpu-per-request.mjs 2> >(grep -v -E 'raft|WARNING' >&2)
echo; echo "## 2. scaling (node bench/scaling.mjs --seconds $D)"
node bench/scaling.mjs --seconds "$D"
echo; echo "## 3. streaming memory (node bench/memory.mjs --seconds 30)"
node bench/memory.mjs --seconds 30
echo; echo "## 4. idle connections (node bench/idle.mjs --connections 10000)"
node bench/idle.mjs --connections 10000
echo; echo "## 5. routing decision (node bench/routing.mjs)"
node bench/routing.mjs
echo; echo "## 6. HTTP/2, gRPC and WebSocket vs nginx (bash bench/protocols.sh -d $D)"
bash bench/protocols.sh -d "$D" 2> >(grep -v -E 'raft|WARNING|project ready' >&2)
echo; echo "## 7. what metrics cost (node bench/metrics-cost.mjs)"
node bench/metrics-cost.mjs 2> >(grep -v -E 'raft|WARNING' >&2)
