#!/usr/bin/env bash
# TCP proxying side by side, in one run on this machine: HAProxy (mode tcp, 1 thread), nginx
# (stream, 1 worker) and this project's data plane (--workers 1, a tcp listener configured through
# a real control plane), each round-robin over the same three nginx HTTP backends. Measures:
#   - small request/response over kept connections: wrk -t1 keep-alive HTTP through the L4 proxy,
#     requests/s (issue 13 target: >= 60 % of HAProxy's);
#   - bulk transfer: wrk fetching a 1 MiB body, MB/s (target: >= 80 % of HAProxy's);
#   - new connections/s: wrk with `Connection: close`, one connection per request (target: >= 50 %);
#   - memory per idle TCP connection: resident memory of the proxy before and after 8,000
#     connections that send nothing (bench/tcp-idle.mjs);
# and the proxy's CPU per request (steadier than rates on a shared machine).
# A benchmark, not a test: run it by hand; on a shared machine, note the load it prints.
#   bash bench/tcp.sh [-d SECONDS] [-c CONNECTIONS] [-r ROUNDS] [-i IDLE_CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
D=8; C=64; R=2; I=8000
while getopts "d:c:r:i:" o; do case $o in d) D=$OPTARG;; c) C=$OPTARG;; r) R=$OPTARG;; i) I=$OPTARG;; *) exit 2;; esac; done
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx; need haproxy haproxy; need wrk wrk
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-stream >/dev/null
bash deploy/bootstrap.sh >/dev/null
ulimit -n 20000 2>/dev/null || true

DIR=$(mktemp -d /tmp/lb-bench-tcp.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
head -c 1048576 /dev/urandom > "$DIR/big"
# nginx's workers run as another user: they must be able to read the body.
chmod 755 "$DIR"; chmod 644 "$DIR/big"
for f in tcp-backend-nginx.conf tcp-nginx.conf; do sed "s#@DIR@#$DIR#g" "bench/conf/$f" > "$DIR/$f"; done

nginx -c "$DIR/tcp-backend-nginx.conf" & pids+=($!)
nginx -c "$DIR/tcp-nginx.conf" & pids+=($!); nginx_master=$!
haproxy -f bench/conf/tcp-haproxy.cfg -q & pids+=($!); haproxy_pid=$!
node bench/start-project.mjs --listen 127.0.0.1:8190 --workers 1 --backends 9141,9142,9143 --tcp-port 18503 \
  2> >(grep -v -E 'raft|WARNING|DeprecationWarning|trace-deprecation' >&2) & pids+=($!)

ready() { curl -sf "http://127.0.0.1:$1/" >/dev/null; }
for i in $(seq 1 300); do
  if ready 9141 && ready 18501 && ready 18502 && ready 18503; then break; fi
  [ "$i" = 300 ] && { echo "the proxies did not come up" >&2; exit 1; }
  sleep 0.2
done

# shellcheck source=bench/lib.sh
source bench/lib.sh
# wrk's "Transfer/sec: 1.21GB" in MB/s (10^6 bytes).
to_mb() { awk '{ v = $1; u = $1; gsub(/[0-9.]/, "", u); sub(/[A-Za-z]+$/, "", v); m = (u == "GB" ? 1073741824 : u == "MB" ? 1048576 : u == "KB" ? 1024 : 1); printf "%.0f", v * m / 1e6 }'; }

# measure name port path connections [extra wrk args]: prints "rps MB/s µs-of-proxy-CPU-per-request errors".
measure() {
  local out pids before after requests
  wrk -t1 -c"$4" -d2s "${@:5}" "http://127.0.0.1:$2$3" >/dev/null 2>&1 || true
  pids=$(proxy_pids "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  out=$(wrk -t1 -c"$4" -d"${D}s" "${@:5}" "http://127.0.0.1:$2$3" 2>&1)
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  requests=$(awk '/requests in/{print $1}' <<<"$out")
  printf '%s %s %s %s\n' "$(awk '/Requests\/sec/{print $2}' <<<"$out")" "$(awk '/Transfer\/sec/{print $2}' <<<"$out" | to_mb)" \
    "$(awk -v t=$((after - before)) -v hz="$HZ" -v n="${requests:-0}" 'BEGIN { printf "%.1f", (n > 0 ? 1e6 * t / hz / n : 0) }')" \
    "$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ')"
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2; exit}'), node $(node --version), $(nginx -v 2>&1 | cut -d' ' -f3), $(haproxy -v | head -1 | cut -d' ' -f1-3)"
echo "# wrk -t1 -d${D}s through each L4 proxy to 3 nginx backends: keep-alive -c$C (16-byte answers), bulk -c16 (1 MiB answers), new connections -c$C; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## memory per idle connection ($I connections that send nothing; resident memory of the proxy, measured first, while every proxy is fresh)"
for entry in nginx:18502 haproxy:18501 project:18503; do
  IFS=: read -r name port <<<"$entry"
  read -r per before after < <(node bench/tcp-idle.mjs --port "$port" --pids "$(proxy_pids "$name" | paste -sd,)" --connections "$I")
  printf '%-8s %8s bytes/connection   (%s kB → %s kB)\n' "$name" "$per" "$before" "$after"
done
echo
printf '%-6s %-8s %12s %9s %9s %10s %9s %10s %s\n' round proxy 'keep-alive/s' 'µs CPU/req' 'bulk MB/s' 'µs CPU/MiB' 'new conn/s' 'µs CPU/conn' errors
results=()
for r in $(seq 1 "$R"); do
  for entry in nginx:18502 haproxy:18501 project:18503; do
    IFS=: read -r name port <<<"$entry"
    read -r krps _ kcpu kerr < <(measure "$name" "$port" / "$C")
    read -r _ bmb bcpu berr < <(measure "$name" "$port" /big 16)
    read -r nrps _ ncpu nerr < <(measure "$name" "$port" / "$C" -H 'Connection: close')
    printf '%-6s %-8s %12s %9s %9s %10s %9s %10s %s\n' "$r" "$name" "$krps" "$kcpu" "$bmb" "$bcpu" "$nrps" "$ncpu" "$kerr$berr$nerr"
    results+=("$r $name $krps $bmb $nrps")
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${results[@]}" | awk '
  { keep[$1, $2] = $3; bulk[$1, $2] = $4; conn[$1, $2] = $5; if ($1 > rounds) rounds = $1 }
  END {
    for (r = 1; r <= rounds; r++) {
      printf "round %d: project vs HAProxy: keep-alive %.0f%% (target >= 60%%), bulk %.0f%% (target >= 80%%), new connections %.0f%% (target >= 50%%)\n",
        r, 100 * keep[r, "project"] / keep[r, "haproxy"], 100 * bulk[r, "project"] / bulk[r, "haproxy"], 100 * conn[r, "project"] / conn[r, "haproxy"]
      printf "         project vs nginx stream: keep-alive %.0f%%, bulk %.0f%%, new connections %.0f%%\n",
        100 * keep[r, "project"] / keep[r, "nginx"], 100 * bulk[r, "project"] / bulk[r, "nginx"], 100 * conn[r, "project"] / conn[r, "nginx"]
    }
  }'

