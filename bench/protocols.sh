#!/usr/bin/env bash
# HTTP/2, gRPC and WebSocket through the data plane side by side with nginx, in one run on this
# machine (issue 12): one nginx worker and a data plane with --workers 1 (configured through a
# real etcd and control plane), in front of the same backends — three nginx HTTP/1.1 servers,
# three gRPC servers and three WebSocket echo servers (bench/protocol-backends.mjs).
#   - h2 requests/s: h2load -c 64 -m 10 over h2c (prior knowledge) to HTTP/1.1 backends (target >= 50 % of nginx's);
#   - gRPC unary calls/s: h2load posting a gRPC message, -c 16 -m 10, vs nginx grpc_pass (target >= 50 %);
#   - WebSocket echo messages/s: bench/ws-echo-load.mjs, 32 connections x 8 messages in flight.
# Each measure runs R rounds, alternating proxies; the medians are reported, with the CPU time the
# proxy process spent per request (user + system): steadier than rates when other load shares the
# machine. A benchmark, not a test.
#   bash bench/protocols.sh [-d SECONDS] [-r ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
D=8; R=2
while getopts "d:r:" o; do case $o in d) D=$OPTARG;; r) R=$OPTARG;; *) exit 2;; esac; done
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx; need h2load nghttp2-client
bash deploy/bootstrap.sh >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
nginx -c "$PWD/bench/conf/protocols-backend-nginx.conf" & pids+=($!)
node bench/protocol-backends.mjs & pids+=($!)
nginx -c "$PWD/bench/conf/protocols-nginx.conf" & pids+=($!); nginx_master=$!
node bench/start-project.mjs --listen 127.0.0.1:8490 --workers 1 --backends 9341,9342,9343 --extra-config bench/conf/protocols-project.json --port-offset 300 \
  2> >(grep -v -E 'raft|WARNING|DeprecationWarning|trace-deprecation' >&2) & pids+=($!)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in $(seq 1 300); do
  if port_open 9351 && port_open 9361 && curl -sf --http2-prior-knowledge http://127.0.0.1:18480/ >/dev/null && curl -sf --http2-prior-knowledge http://127.0.0.1:18380/ >/dev/null; then break; fi
  [ "$i" = 300 ] && { echo "the proxies did not come up" >&2; exit 1; }
  sleep 0.2
done

# One gRPC message: not compressed, 13 bytes of payload.
GRPC_BODY=$(mktemp /tmp/lb-bench-grpc.XXXXXX)
printf '\x00\x00\x00\x00\x0dhello, bench!' > "$GRPC_BODY"

# dataplane_pid, cpu_ticks and HZ (its proxy_pids, for this script's proxies, is defined below).
# shellcheck source=bench/lib.sh
source bench/lib.sh
h2rate() { awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i+1) == "req/s,") print $i }' <<<"$1"; }
h2ok() { awk '/^requests:/ { print $8 " of " $2 " succeeded" }' <<<"$1"; }
# The processes that do each proxy's work: nginx's worker; the data plane (one worker: one process),
# told apart from other benches' data planes by its admin port (29901 + the port offset).
proxy_pids() {
  case $1 in
    nginx) pgrep -P "$nginx_master" ;;
    project) dataplane_pid 30201 ;;
  esac
  return 0
}
# µs of the proxy's CPU per request: ticks before, ticks after, requests.
us_per() { awk -v t=$(($2 - $1)) -v hz="$HZ" -v n="$3" 'BEGIN { printf "%.0f", (n > 0 ? 1e6 * t / hz / n : 0) }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A results
for round in $(seq 1 "$R"); do
  for proxy in nginx project; do
    if [ "$proxy" = nginx ]; then h2=18380; grpc=18381; ws=18382; else h2=18480; grpc=18480; ws=8490; fi
    pp=$(proxy_pids "$proxy")
    h2load -c 64 -m 10 -D 2 "http://127.0.0.1:$h2/" >/dev/null 2>&1
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pp); out=$(h2load -c 64 -m 10 -D "$D" "http://127.0.0.1:$h2/" 2>&1); after=$(cpu_ticks $pp)
    n=$(awk '/^requests:/ { print $8 }' <<<"$out"); cpu=$(us_per "$before" "$after" "$n")
    results[$proxy-h2]+="$(h2rate "$out") "; results[$proxy-h2cpu]+="$cpu "
    echo "round $round $proxy h2:   $(h2rate "$out") req/s, $cpu µs CPU/req ($(h2ok "$out"))"
    grpc_args=(-d "$GRPC_BODY" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$grpc/bench.Echo/Unary")
    h2load -c 16 -m 10 -D 2 "${grpc_args[@]}" >/dev/null 2>&1
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pp); out=$(h2load -c 16 -m 10 -D "$D" "${grpc_args[@]}" 2>&1); after=$(cpu_ticks $pp)
    n=$(awk '/^requests:/ { print $8 }' <<<"$out"); cpu=$(us_per "$before" "$after" "$n")
    results[$proxy-grpc]+="$(h2rate "$out") "; results[$proxy-grpccpu]+="$cpu "
    echo "round $round $proxy gRPC: $(h2rate "$out") calls/s, $cpu µs CPU/call ($(h2ok "$out"))"
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pp); out=$(node bench/ws-echo-load.mjs "ws://127.0.0.1:$ws/ws" --seconds "$D"); after=$(cpu_ticks $pp)
    rate=$(awk '{ print $2 }' <<<"$out"); cpu=$(us_per "$before" "$after" "$(awk -v r="$rate" -v d="$D" 'BEGIN { printf "%.0f", r * (d + 1) }')")
    results[$proxy-ws]+="$rate "; results[$proxy-wscpu]+="$cpu "
    echo "round $round $proxy ws:   $rate messages/s, $cpu µs CPU/message"
  done
done
rm -f "$GRPC_BODY"

echo
echo "$(node -e "import('./bench/lib.mjs').then((m) => console.log(m.machine()))"), load $(cut -d' ' -f1-3 /proc/loadavg), -d $D, $R rounds (medians)"
printf '%-28s %10s %10s %7s   %14s %14s\n' measure nginx project ratio 'nginx µs CPU' 'project µs CPU'
for m in h2 grpc ws; do
  n=$(tr ' ' '\n' <<<"${results[nginx-$m]}" | grep . | median)
  p=$(tr ' ' '\n' <<<"${results[project-$m]}" | grep . | median)
  nc=$(tr ' ' '\n' <<<"${results[nginx-${m}cpu]}" | grep . | median)
  pc=$(tr ' ' '\n' <<<"${results[project-${m}cpu]}" | grep . | median)
  case $m in h2) label='h2 requests/s (-c64 -m10)';; grpc) label='gRPC unary calls/s';; ws) label='WebSocket echo messages/s';; esac
  printf '%-28s %10.0f %10.0f %6.0f%%   %14s %14s\n' "$label" "$n" "$p" "$(awk -v p="$p" -v n="$n" 'BEGIN { print 100 * p / n }')" "$nc" "$pc"
done
