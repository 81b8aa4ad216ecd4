#!/usr/bin/env bash
# Proxy throughput of the data plane side by side with its peers, in one run on this machine:
# direct, nginx, HAProxy, five Node proxies (from ../shared/bench/peers.sh) and this project's data
# plane, configured through a real control plane and etcd. Prints the table and the ratios the
# performance targets are stated in. A benchmark, not a test: run it by hand on a quiet machine.
#   bench/proxy.sh [-d SECONDS] [-c CONNECTIONS] [-w WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
D=8; C=64; W=1
while getopts "d:c:w:" o; do case $o in d) D=$OPTARG;; c) C=$OPTARG;; w) W=$OPTARG;; *) exit 2;; esac; done
PEERS_SH=${LB_PEERS_SH:-../shared/bench/peers.sh}
[ -x "$PEERS_SH" ] || [ -f "$PEERS_SH" ] || { echo "peers.sh not found at $PEERS_SH (set LB_PEERS_SH)" >&2; exit 1; }
bash deploy/bootstrap.sh >/dev/null
out=$(bash "$PEERS_SH" -d "$D" -c "$C" -u http://127.0.0.1:8090 -s "exec node bench/start-project.mjs --workers $W")
echo "$out"
echo
echo "$(node -e "import('./bench/lib.mjs').then((m) => console.log(m.machine()))"), load $(cut -d' ' -f1-3 /proc/loadavg), -d $D -c $C, data plane workers: $W"
awk '
  NR > 1 { rps[$1] = $2; p99[$1] = $7 }
  END {
    p = rps["project"]; if (p == "" || p == 0) { print "the project did not answer"; exit 1 }
    printf "project vs node-undici-lean:   %.2fx  (target >= 1.4x)\n", p / rps["node-undici-lean"]
    printf "project vs fastify-reply-from: %.2fx  (target >= 2x)\n", p / rps["fastify-reply-from"]
    printf "project vs haproxy:            %.0f%%  (target >= 35%%)\n", 100 * p / rps["haproxy"]
    printf "p99: project %s, node-undici-lean %s\n", p99["project"], p99["node-undici-lean"]
  }' <<<"$out"
