#!/usr/bin/env bash
# TLS termination side by side, in one run on this machine: nginx (1 worker), HAProxy (1 thread)
# and this project's data plane (--workers 1, configured through a real control plane over mutual
# TLS), each serving the same ECDSA P-256 certificate over TLS 1.3 in front of the same three nginx
# backends. Measures, with wrk -t1:
#   - keep-alive HTTPS requests/s (issue 11 target: >= 50 % of HAProxy's);
#   - full handshakes/s: a new connection per request (`Connection: close`) to a second port of
#     each proxy that does not resume sessions — wrk resumes about half of them where it can —,
#     so that every one is a full TLS 1.3 handshake (target: >= 60 % of HAProxy's);
# and checks that a session from data plane A resumes on data plane B (the shared ticket key),
# with openssl s_client, and how fast single resumed handshakes are (openssl s_time -reuse).
# A benchmark, not a test: run it by hand; on a shared machine, note the load it prints.
#   bash bench/tls.sh [-d SECONDS] [-c CONNECTIONS] [-r ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
D=8; C=64; R=2
while getopts "d:c:r:" o; do case $o in d) D=$OPTARG;; c) C=$OPTARG;; r) R=$OPTARG;; *) exit 2;; esac; done
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx; need haproxy haproxy; need wrk wrk
bash deploy/bootstrap.sh >/dev/null

TLS_DIR=$(mktemp -d /tmp/lb-bench-tls.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TLS_DIR"; }
trap cleanup EXIT
# One CA, one ECDSA P-256 certificate for localhost: what every proxy serves (deploy/local-tls.mjs).
node --input-type=module -e "import { localTls } from './deploy/local-tls.mjs'; localTls('$TLS_DIR', ['bench', 'bench-2']);"
cat "$TLS_DIR/demo.pem" "$TLS_DIR/demo.key" > "$TLS_DIR/demo-combined.pem"
sed "s#@TLS_DIR@#$TLS_DIR#g" bench/conf/tls-nginx.conf > "$TLS_DIR/nginx.conf"
sed "s#@TLS_DIR@#$TLS_DIR#g" bench/conf/tls-haproxy.cfg > "$TLS_DIR/haproxy.cfg"

nginx -c "$PWD/bench/conf/tls-backend-nginx.conf" & pids+=($!)
nginx -c "$TLS_DIR/nginx.conf" & pids+=($!); nginx_master=$!
haproxy -f "$TLS_DIR/haproxy.cfg" -q & pids+=($!); haproxy_pid=$!
# Two data planes: the first is measured, the second (listening on 127.0.0.2) shows resumption across nodes.
node bench/start-project.mjs --listen 127.0.0.1:8190 --workers 1 --backends 9131,9132,9133 --https-port 18445 --https-full-port 18446 --tls-dir "$TLS_DIR" --nodes 2 \
  2> >(grep -v -E 'raft|WARNING|DeprecationWarning|trace-deprecation' >&2) & pids+=($!)

ready() { curl -sf --cacert "$TLS_DIR/ca.pem" --resolve "localhost:$1:${2:-127.0.0.1}" "https://localhost:$1/" >/dev/null; }
for i in $(seq 1 300); do
  if ready 18443 && ready 18444 && ready 18445 && ready 18446 && ready 18447 && ready 18448 && ready 18445 127.0.0.2; then break; fi
  [ "$i" = 300 ] && { echo "the proxies did not come up" >&2; exit 1; }
  sleep 0.2
done

# shellcheck source=bench/lib.sh
source bench/lib.sh

# wrk name port [extra wrk args]; prints "rps p50 p99 µs-of-proxy-CPU-per-request errors". CPU per
# request is the steadier figure on a shared machine: other load slows every proxy, but barely
# changes how much CPU each one spends on a request.
measure() {
  local out pids before after requests
  wrk -t1 -c"$C" -d2s "${@:3}" "https://localhost:$2/" >/dev/null 2>&1 || true
  pids=$(proxy_pids "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  out=$(wrk -t1 -c"$C" -d"${D}s" --latency "${@:3}" "https://localhost:$2/" 2>&1)
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  requests=$(awk '/requests in/{print $1}' <<<"$out")
  printf '%s %s %s %s %s\n' "$(awk '/Requests\/sec/{print $2}' <<<"$out")" "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")" \
    "$(awk -v t=$((after - before)) -v hz="$HZ" -v n="${requests:-0}" 'BEGIN { printf "%.0f", (n > 0 ? 1e6 * t / hz / n : 0) }')" \
    "$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ')"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2; exit}'), node $(node --version), $(nginx -v 2>&1 | cut -d' ' -f3), $(haproxy -v | head -1 | cut -d' ' -f1-3)"
echo "# wrk -t1 -c$C -d${D}s, TLS 1.3, ECDSA P-256, 16-byte responses; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-8s %12s %9s %9s %10s   %14s %9s %9s %10s\n' round proxy 'keep-alive' p50 p99 'µs CPU/req' 'handshakes/s' p50 p99 'µs CPU/hs'
results=()
for r in $(seq 1 "$R"); do
  for entry in nginx:18443:18447 haproxy:18444:18448 project:18445:18446; do
    IFS=: read -r name port full <<<"$entry"
    read -r krps kp50 kp99 kcpu kerr < <(measure "$name" "$port")
    read -r frps fp50 fp99 fcpu ferr < <(measure "$name" "$full" -H 'Connection: close')
    printf '%-6s %-8s %12s %9s %9s %10s   %14s %9s %9s %10s %s %s\n' "$r" "$name" "$krps" "$kp50" "$kp99" "$kcpu" "$frps" "$fp50" "$fp99" "$fcpu" "$kerr" "$ferr"
    results+=("$r $name $krps $frps $kcpu $fcpu")
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${results[@]}" | awk '
  { keep[$1, $2] = $3; full[$1, $2] = $4; kcpu[$1, $2] = $5; fcpu[$1, $2] = $6; if ($1 > rounds) rounds = $1 }
  END {
    for (r = 1; r <= rounds; r++) {
      printf "round %d: project vs HAProxy: keep-alive %.0f%% (target >= 50%%), full handshakes %.0f%% (target >= 60%%); vs nginx %.0f%% / %.0f%%\n",
        r, 100 * keep[r, "project"] / keep[r, "haproxy"], 100 * full[r, "project"] / full[r, "haproxy"],
        100 * keep[r, "project"] / keep[r, "nginx"], 100 * full[r, "project"] / full[r, "nginx"]
      printf "         per CPU-second, project vs HAProxy: keep-alive %.0f%%, full handshakes %.0f%%\n",
        100 * kcpu[r, "haproxy"] / kcpu[r, "project"], 100 * fcpu[r, "haproxy"] / fcpu[r, "project"]
    }
  }'

echo
echo "## resumption across data planes (one ticket key, pushed by the control plane)"
sess="$TLS_DIR/session.pem"
req=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
openssl s_client -connect 127.0.0.1:18445 -servername localhost -CAfile "$TLS_DIR/ca.pem" -ign_eof -sess_out "$sess" <<<"$req" 2>/dev/null | grep -E '^(New|Reused),' | sed 's/^/node A (127.0.0.1): /'
openssl s_client -connect 127.0.0.2:18445 -servername localhost -CAfile "$TLS_DIR/ca.pem" -ign_eof -sess_in "$sess" <<<"$req" 2>/dev/null | grep -E '^(New|Reused),' | sed 's/^/node B (127.0.0.2) with A'"'"'s session: /'
for entry in nginx:18447 haproxy:18448 project:18446; do
  IFS=: read -r name port <<<"$entry"
  openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$TLS_DIR/ca.pem" -ign_eof -sess_out "$sess.$name" <<<"$req" >/dev/null 2>&1
  openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$TLS_DIR/ca.pem" -ign_eof -sess_in "$sess.$name" <<<"$req" 2>/dev/null | grep -E '^(New|Reused),' | sed "s/^/$name full-handshake port $port, offered a session: /"
done
echo
echo "## single-connection handshakes (openssl s_time, 5 s each: one connection at a time, client and server on the same 2 cores)"
for entry in haproxy:127.0.0.1:18444 project:127.0.0.1:18445 project-node-B:127.0.0.2:18445; do
  name=${entry%%:*}; addr=${entry#*:}
  new=$(openssl s_time -connect "$addr" -new -time 5 2>/dev/null | awk '/connections in .* real seconds/{print $1 / $4; exit}' || true)
  reuse=$(openssl s_time -connect "$addr" -reuse -time 5 2>/dev/null | awk '/connections in .* real seconds/{print $1 / $4; exit}' || true)
  printf '%-15s full %8.0f/s   resumed %8.0f/s\n' "$name" "${new:-0}" "${reuse:-0}"
done
