# Shell helpers of the side-by-side benchmarks (tls.sh, tcp.sh, protocols.sh, ab.sh): which processes do each proxy's
# work, and how much CPU they used. Source it after setting nginx_master and haproxy_pid.

# The processes that do each proxy's work: nginx's worker, HAProxy itself, the data plane (its
# --node-id is bench; one worker, so one process).
proxy_pids() {
  case $1 in
    nginx) pgrep -P "$nginx_master" ;;
    haproxy) echo "$haproxy_pid" ;;
    # `[d]`: the grep that does the matching must not match its own command line.
    project) for d in /proc/[0-9]*; do if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q '[d]ata-plane/dist/main.js.*--node-id bench '; then basename "$d"; fi; done ;;
  esac
  return 0
}
# The data plane whose admin port is $1: how protocols.sh and ab.sh tell theirs apart from other
# data planes running at the same time (one worker, so one process).
dataplane_pid() {
  local d
  for d in /proc/[0-9]*; do if { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q "[d]ata-plane/dist/main.js.*--admin-listen 127.0.0.1:$1 "; then basename "$d"; fi; done
  return 0
}
# CPU time (user + system, in clock ticks) the given processes have used.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
