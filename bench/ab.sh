#!/usr/bin/env bash
# A/B of two data planes side by side, for changes worth a few per cent. On these VMs the speed
# drifts by more than that within minutes, so one run after another (proxy.sh, protocols.sh) cannot
# tell such a change from the drift (bench/README.md, "Allocator"). Here two projects run at once,
# A and B, and are loaded in ABBA pairs (A, B, B, A), so drift cancels within each pair; run it
# twice with A and B swapped to see what the position itself is worth.
#
#   bash bench/ab.sh [-m h2|grpc|h1] [-n PAIRS] [-d SECONDS] [-a DIR] [-b DIR] [-A ENV] [-B ENV] [-X FLAGS] [-Y FLAGS]
#
#   -m  what loads them: h2 (h2load -c 64 -m 10 over h2c to the HTTP/1.1 backends, default),
#       grpc (h2load posting one gRPC message, -c 16 -m 10, to an h2c pool) or h1 (wrk -t1 -c64)
#   -n  ABBA pairs (default 8); -d seconds per measure (default 5, after a 1 s warm-up)
#   -a / -b  the tree each runs from (default this one): a `git worktree add DIR REV`, built, to
#       compare two commits
#   -A / -B  environment for each project, VAR=value words (e.g. -A LB_BENCH_MALLOC=system)
#   -X / -Y  more flags for A's / B's data plane (e.g. -Y '--upstream-client undici')
#
# Per pair it prints both rates and B/A; at the end the mean of B/A for the rate and for the CPU the
# data plane burnt per request, and in how many pairs B was ahead. A benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=h2; N=8; D=5; TREE_A=$PWD; TREE_B=$PWD; ENV_A=""; ENV_B=""; ARGS_A=""; ARGS_B=""
while getopts "m:n:d:a:b:A:B:X:Y:" o; do
  case $o in
    m) MODE=$OPTARG;; n) N=$OPTARG;; d) D=$OPTARG;; a) TREE_A=$(cd "$OPTARG" && pwd);; b) TREE_B=$(cd "$OPTARG" && pwd);;
    A) ENV_A=$OPTARG;; B) ENV_B=$OPTARG;; X) ARGS_A=$OPTARG;; Y) ARGS_B=$OPTARG;; *) exit 2;;
  esac
done
case $MODE in h2|grpc|h1) ;; *) echo "-m must be h2, grpc or h1" >&2; exit 2;; esac
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need nginx nginx; need h2load nghttp2-client; need wrk wrk
for t in "$TREE_A" "$TREE_B"; do [ -f "$t/packages/data-plane/dist/main.js" ] || { echo "$t is not built (pnpm build)" >&2; exit 2; }; done

pids=(); tmp=$(mktemp -d /tmp/lb-ab.XXXXXX)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
nginx -c "$PWD/bench/conf/protocols-backend-nginx.conf" & pids+=($!)
node bench/protocol-backends.mjs & pids+=($!)
# A: HTTP/1.1 on 8490, h2c on 18480, admin 30201; B: 8590, 18580, 30301.
sed 's/18480/18580/' bench/conf/protocols-project.json > "$tmp/b.json"
start() { # tree, env, data-plane flags, listen, config, offset
  # shellcheck disable=SC2086
  (cd "$1" && exec env $2 node bench/start-project.mjs --listen "127.0.0.1:$4" --workers 1 --backends 9341,9342,9343 \
    --extra-config "$5" --port-offset "$6" --data-plane-args="$3" \
    2> >(grep -v -E 'raft|WARNING|DeprecationWarning|trace-deprecation' >&2)) &
  pids+=($!)
}
start "$TREE_A" "$ENV_A" "$ARGS_A" 8490 "$PWD/bench/conf/protocols-project.json" 300
start "$TREE_B" "$ENV_B" "$ARGS_B" 8590 "$tmp/b.json" 400
for i in $(seq 1 300); do
  curl -sf --http2-prior-knowledge http://127.0.0.1:18480/ >/dev/null && curl -sf --http2-prior-knowledge http://127.0.0.1:18580/ >/dev/null && break
  [ "$i" = 300 ] && { echo "the two projects did not come up" >&2; exit 1; }
  sleep 0.2
done
# dataplane_pid, cpu_ticks and HZ.
# shellcheck source=bench/lib.sh
source bench/lib.sh
PID_A=$(dataplane_pid 30201); PID_B=$(dataplane_pid 30301)
printf '\x00\x00\x00\x00\x0dhello, bench!' > "$tmp/grpc.bin"

# One measure of one side: "requests/s µs-CPU-per-request".
measure() { # pid, h2c port, HTTP/1.1 port
  local out n rate t0 t1
  case $MODE in
    h2) h2load -c 64 -m 10 -D 1 "http://127.0.0.1:$2/" >/dev/null 2>&1
        t0=$(cpu_ticks "$1"); out=$(h2load -c 64 -m 10 -D "$D" "http://127.0.0.1:$2/" 2>&1); t1=$(cpu_ticks "$1")
        n=$(awk '/^requests:/ { print $8 }' <<<"$out"); rate=$(awk '/^finished in/ { print $4 }' <<<"$out");;
    grpc) local g=(-d "$tmp/grpc.bin" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$2/bench.Echo/Unary")
        h2load -c 16 -m 10 -D 1 "${g[@]}" >/dev/null 2>&1
        t0=$(cpu_ticks "$1"); out=$(h2load -c 16 -m 10 -D "$D" "${g[@]}" 2>&1); t1=$(cpu_ticks "$1")
        n=$(awk '/^requests:/ { print $8 }' <<<"$out"); rate=$(awk '/^finished in/ { print $4 }' <<<"$out");;
    h1) wrk -t1 -c64 -d1s "http://127.0.0.1:$3/" >/dev/null
        t0=$(cpu_ticks "$1"); out=$(wrk -t1 -c64 -d"${D}s" "http://127.0.0.1:$3/"); t1=$(cpu_ticks "$1")
        n=$(awk '/requests in/ { print $1 }' <<<"$out"); rate=$(awk '/Requests\/sec/ { print $2 }' <<<"$out");;
  esac
  awk -v r="$rate" -v t=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f %.1f", r, (n > 0 ? 1e6 * t / hz / n : 0) }'
}

echo "$(node -e "import('./bench/lib.mjs').then((m) => console.log(m.machine()))"), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "A: ${TREE_A} ${ENV_A:-(no env)} ${ARGS_A}"
echo "B: ${TREE_B} ${ENV_B:-(no env)} ${ARGS_B}"
echo "mode $MODE, $N ABBA pairs of ${D} s"
: > "$tmp/pairs"
for i in $(seq 1 "$N"); do
  read -r a1 ca1 <<<"$(measure "$PID_A" 18480 8490)"; read -r b1 cb1 <<<"$(measure "$PID_B" 18580 8590)"
  read -r b2 cb2 <<<"$(measure "$PID_B" 18580 8590)"; read -r a2 ca2 <<<"$(measure "$PID_A" 18480 8490)"
  awk -v i="$i" -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" -v ca1="$ca1" -v ca2="$ca2" -v cb1="$cb1" -v cb2="$cb2" 'BEGIN {
    a = (a1 + a2) / 2; b = (b1 + b2) / 2; ca = (ca1 + ca2) / 2; cb = (cb1 + cb2) / 2
    printf "pair %2d  A %7.0f/s %6.1f us   B %7.0f/s %6.1f us   B/A %.3f\n", i, a, ca, b, cb, b / a
    printf "%f %f\n", b / a, cb / ca > "/dev/stderr" }' 2>>"$tmp/pairs"
done
awk '{ r += $1; c += $2; n++; if ($1 > 1) w++ } END {
  printf "mean B/A: requests/s %.3f, CPU per request %.3f; B ahead in %d of %d pairs\n", r / n, c / n, w, n }' "$tmp/pairs"
