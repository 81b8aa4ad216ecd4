// The control plane at scale (issue 16): real etcd and control plane, simulated data planes in
// separate processes (test/support/node-fleet.ts: real gRPC streams, one channel each, applying
// every push the way the data plane does). Measures, with the load average beside every figure:
//   1. REST write → 100 nodes acked, and → 1,000 nodes acked (p50/p99 over many writes);
//   2. 1,000 nodes × 10,000 backends (100 pools × 100), one-backend change: bytes per node, last
//      node acked, control-plane CPU per write, control-plane RSS;
//   3. the 1,000 nodes reconnecting at once after a control-plane restart: time until all run the
//      current version again, seen by the nodes and by GET /v1/nodes.
// A benchmark, not a test: it prints figures and asserts nothing. Needs `pnpm build` first.
//   node --import tsx bench/control-plane-scale.mjs [--writes 50] [--nodes 1000] [--only latency|large|storm] [--fleet-nice 10]
// --fleet-nice N runs the simulated nodes at niceness N: on two cores their reconnect attempts
// after a restart otherwise take most of the CPU the restarting control plane needs (real nodes
// run elsewhere). Default 0, as the figures in README.md were measured.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { EtcdServer } from '../test/support/etcd.ts';
import { api } from '../test/support/http.ts';
import { NodeFleet } from '../test/support/node-fleet.ts';
import { ControlPlane } from '../test/support/planes.ts';
import { now } from '../test/support/simulated-node.ts';
import { waitFor } from '../test/support/wait.ts';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '50' },
    nodes: { type: 'string', default: '1000' },
    only: { type: 'string' },
    'fleet-nice': { type: 'string', default: '0' },
  },
});
const WRITES = Number(values.writes);
const NODES = Number(values.nodes);
const FLEET_NICE = Number(values['fleet-nice']);
const run = (name) => values.only === undefined || values.only === name;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const log = (line) => console.log(`${line}   [load ${load()}]`);
const ms = (x) => `${x.toFixed(1)} ms`;
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)];

/** CPU seconds (user + system) the process has used, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))[1]);
  return { rss: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 };
}

function config(pools, backends, changed = -1) {
  const out = { pools: {}, routes: {} };
  for (let p = 0; p < pools; p++) {
    out.pools[`pool-${p}`] = {
      algorithm: 'weighted_round_robin',
      backends: Array.from({ length: backends }, (_, b) => ({
        id: `b${b}`,
        address: `10.${p}.${b >> 8}.${b & 255}:8080`,
        weight: p === 0 && b === 0 ? changed + 2 : 1,
      })),
    };
    out.routes[`route-${p}`] = { match: { host: `svc-${p}.example.com` }, pools: [{ pool: `pool-${p}` }] };
  }
  return out;
}

/** One-backend writes, each waited for on every node: latency to the last ACK, its push size, the CPU they cost. */
async function writes(cp, fleet, count, label) {
  const latencies = [];
  const bytes = [];
  for (let i = 0; i < count; i++) {
    const started = now();
    const res = await api('PATCH', `${cp.url}/v1/pools/pool-0/backends/b0`, { weight: (i % 50) + 2 });
    if (res.status !== 200) throw new Error(`${label}: write ${i} → ${res.status} ${JSON.stringify(res.body)}`);
    const nodes = await fleet.converged(res.body.version, 60_000);
    latencies.push(Math.max(...nodes.map((n) => n.ackedAt)) - started);
    bytes.push(Math.max(...nodes.map((n) => n.bytes)));
    if (nodes.some((n) => !n.delta)) throw new Error(`${label}: a node got a full snapshot for a one-backend change`);
  }
  return { latencies, bytes };
}

console.log(`# control-plane scale, ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0].model}, node ${process.version}`);
const etcd = await EtcdServer.start();
const cp = await ControlPlane.start({ etcd: etcd.url });
const fleets = [];
try {
  const small = await api('PUT', `${cp.url}/v1/config`, config(10, 10));
  if (small.status !== 200) throw new Error(`config: ${small.status}`);

  if (run('latency')) {
    const hundred = NodeFleet.start({ controlPlanes: [cp.grpcAddress], nodes: 100, processes: 2, prefix: 'h', nice: FLEET_NICE });
    fleets.push(hundred);
    await hundred.converged(small.body.version, 60_000);
    const r = await writes(cp, hundred, WRITES * 2, '100 nodes');
    log(
      `REST write → 100 nodes acked (10 pools × 10 backends, ${r.latencies.length} writes): p50 ${ms(quantile(r.latencies, 0.5))}, p99 ${ms(quantile(r.latencies, 0.99))}`,
    );
    await hundred.stop();
    fleets.pop();
  }

  const fleet = NodeFleet.start({ controlPlanes: [cp.grpcAddress], nodes: NODES, processes: 4, prefix: 'k', nice: FLEET_NICE });
  fleets.push(fleet);
  let started = now();
  await fleet.converged((await api('GET', `${cp.url}/v1/config`)).body.version, 120_000);
  log(`${NODES} nodes connected from nothing, small config: all acked in ${ms(now() - started)}`);

  if (run('latency')) {
    const r = await writes(cp, fleet, WRITES, `${NODES} nodes`);
    log(
      `REST write → ${NODES} nodes acked (10 pools × 10 backends, ${r.latencies.length} writes): p50 ${ms(quantile(r.latencies, 0.5))}, p99 ${ms(quantile(r.latencies, 0.99))}`,
    );
  }

  if (run('large') || run('storm')) {
    started = now();
    const large = await api('PUT', `${cp.url}/v1/config`, config(100, 100));
    if (large.status !== 200) throw new Error(`large config: ${large.status}`);
    const nodes = await fleet.converged(large.body.version, 180_000);
    log(
      `${NODES} nodes × 10,000 backends: the new config (a delta of ${kib(Math.max(...nodes.map((n) => n.bytes)))} per node) acked by all in ${ms(now() - started)}`,
    );
  }

  if (run('large')) {
    const pid = cp.process.process.pid;
    // The idle cost (keepalives of 1,000 streams, timers) is not the writes' doing: measured over
    // 10 s before and after the writes (once the switch to the large config has settled), and
    // taken off the CPU the writes' window used.
    const idleRate = async () => {
      const from = cpuSeconds(pid);
      await new Promise((r) => setTimeout(r, 10_000));
      return (cpuSeconds(pid) - from) / 10;
    };
    await new Promise((r) => setTimeout(r, 10_000));
    const idleBefore = await idleRate();
    const cpuFrom = cpuSeconds(pid);
    const wallFrom = now();
    const r = await writes(cp, fleet, WRITES, `${NODES} × 10,000`);
    // Let the node-state flush that follows the last ACKs happen inside the window too.
    await new Promise((res) => setTimeout(res, 2_500));
    const wall = (now() - wallFrom) / 1000;
    const used = cpuSeconds(pid) - cpuFrom;
    const idle = (idleBefore + (await idleRate())) / 2;
    const cpuPerWrite = ((used - idle * wall) / r.latencies.length) * 1000;
    log(`${NODES} nodes × 10,000 backends, one-backend change: bytes per node: max ${kib(Math.max(...r.bytes))}`);
    log(
      `${NODES} nodes × 10,000 backends, one-backend change: last node acked: p50 ${ms(quantile(r.latencies, 0.5))}, p99 ${ms(quantile(r.latencies, 0.99))}, max ${ms(Math.max(...r.latencies))}`,
    );
    log(
      `${NODES} nodes × 10,000 backends, one-backend change: control-plane CPU per write: ${ms(cpuPerWrite)} (${ms((used / r.latencies.length) * 1000)} with the idle cost of ${ms(idle * 1000)} per second left in)`,
    );
    const mem = memory(pid);
    log(`${NODES} nodes × 10,000 backends: control-plane RSS ${(mem.rss / 1e6).toFixed(0)} MB (peak ${(mem.peak / 1e6).toFixed(0)} MB)`);
  }

  if (run('storm')) {
    const version = (await api('GET', `${cp.url}/v1/config`)).body.version;
    const reconnected = new Set();
    const off = fleet.listen((event) => {
      if (event.t === 'connected') reconnected.add(event.node);
    });
    const code = await cp.process.stop('SIGTERM', 30_000);
    if (code !== 0) console.log(`(the control plane exited with ${code} on SIGTERM)`);
    started = now();
    await cp.restart();
    const up = now() - started;
    await waitFor(() => reconnected.size === NODES, { timeoutMs: 120_000, intervalMs: 20, message: 'every node to reconnect' });
    const allBack = now() - started;
    await waitFor(
      async () => {
        const list = (await api('GET', `${cp.url}/v1/nodes`)).body.nodes;
        return list.filter((n) => n.status === 'connected' && n.configVersion === version).length === NODES;
      },
      { timeoutMs: 120_000, intervalMs: 100, message: 'GET /v1/nodes to list every node at the current version' },
    );
    const listed = now() - started;
    off();
    const next = await api('PATCH', `${cp.url}/v1/pools/pool-0/backends/b0`, { weight: 99 });
    await fleet.converged(next.body.version, 60_000);
    const nextAcked = now() - started;
    log(
      `${NODES}-node reconnect storm (10,000 backends), from the restart: control plane ready ${ms(up)}, every node reconnected and current ${ms(allBack)}, GET /v1/nodes shows all at the current version ${ms(listed)}, a write after it acked by all ${ms(nextAcked)}`,
    );
    log(`${NODES}-node reconnect storm: streams that ended and came back: ${fleet.closedStreams()} (one per node from the restart expected)`);
  }
} finally {
  for (const f of fleets) await f.stop();
  await cp.stop().catch(() => undefined);
  await etcd.stop();
}
