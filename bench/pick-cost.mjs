#!/usr/bin/env node
/**
 * Pick cost of every balancing algorithm at 3, 100 and 10,000 backends, plus the build time of the
 * ring-hash and maglev tables at 10,000 backends. Run by hand after `pnpm build`:
 *
 *   node bench/pick-cost.mjs            # full run (~1 min)
 *   node bench/pick-cost.mjs --quick    # fewer iterations
 *
 * "pick" is one balancer.pick(); "pick+account" adds what the forwarder does around it for every
 * request (requestStarted on dispatch, requestEnded on completion), which is where the
 * least-loaded algorithms pay for their index. Hash algorithms hash a different client IP each
 * pick; sticky picks carry a valid cookie. Targets (issue 5): every pick < 1 µs at 10,000 backends,
 * maglev build < 50 ms.
 */
import { createBalancer } from '../packages/data-plane/dist/balancer/factory.js';
import { BackendRuntime, requestEnded, requestStarted } from '../packages/data-plane/dist/balancer/host.js';
import { RequestPickContext } from '../packages/data-plane/dist/balancer/request-context.js';
import { buildMaglevTable } from '../packages/data-plane/dist/balancer/maglev.js';

const quick = process.argv.includes('--quick');
const PICKS = quick ? 200_000 : 1_000_000;
const SIZES = [3, 100, 10_000];
const ALGORITHMS = [
  'round_robin',
  'weighted_round_robin',
  'random',
  'weighted_random',
  'least_connections',
  'weighted_least_connections',
  'p2c',
  'least_response_time',
  'ip_hash',
  'consistent_hash',
  'maglev',
  'resource_based',
];
const clock = { now: () => Date.now() };

function makeHosts(n) {
  // Uneven weights 1..10, so weighted algorithms do their real work.
  return Array.from({ length: n }, (_, i) => {
    const runtime = new BackendRuntime();
    runtime.latencyMs = 1 + (i % 13);
    runtime.latencySamples = 1;
    return { backend: i, id: `backend-${i}`, weight: 1 + (i % 10), runtime };
  });
}

/** 1024 requests from different client IPs, reused round robin. */
function makeContexts(cookie) {
  return Array.from({ length: 1024 }, (_, i) => {
    const ctx = new RequestPickContext();
    const headers = ['host', 'example.com', 'user-agent', 'bench'];
    if (cookie !== undefined) headers.push('cookie', cookie);
    ctx.reset(headers, `/path/${i}?q=${i}`, { remoteAddress: `10.${(i >> 8) & 255}.${i & 255}.7` });
    return ctx;
  });
}

function nsPer(count, fn) {
  for (let i = 0; i < Math.min(count, 100_000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / count;
}

function measure(pool, n) {
  const hosts = makeHosts(n);
  const t0 = process.hrtime.bigint();
  const b = createBalancer(pool, hosts, { random: Math.random, clock, poolName: 'bench', stickySecret: 'bench' });
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let cookie;
  if (pool.sticky !== undefined) {
    const first = new RequestPickContext();
    first.reset([], '/', { remoteAddress: '10.0.0.1' });
    b.pick(first);
    cookie = first.setCookie.split(';')[0];
  }
  const ctxs = makeContexts(cookie);
  let sink = 0;
  const pick = nsPer(PICKS, (i) => {
    sink += b.pick(ctxs[i & 1023]).weight;
  });
  const account = nsPer(PICKS, (i) => {
    const h = b.pick(ctxs[i & 1023]);
    requestStarted(h.runtime);
    requestEnded(h.runtime);
  });
  if (sink < 0) console.log(sink);
  return { pick, account, buildMs };
}

const fmt = (x) => x.toFixed(x < 10 ? 1 : 0).padStart(7);
const rows = [];
console.log(`node ${process.version}, ${PICKS.toLocaleString()} picks per cell; ns per pick (pick / pick+account), build ms at 10,000\n`);
const header = ['algorithm'.padEnd(30), ...SIZES.map((n) => `n=${n}`.padStart(17)), 'build@10k ms'.padStart(14)].join(' ');
console.log(header);
console.log('-'.repeat(header.length));
const cases = [
  ...ALGORITHMS.map((a) => ({ algorithm: a })),
  { algorithm: 'round_robin', sticky: { cookie: 'lb_affinity', ttlSeconds: 0, secure: false, httpOnly: true, sameSite: 'Lax' } },
];
for (const pool of cases) {
  const label = pool.sticky ? `${pool.algorithm} + sticky` : pool.algorithm;
  const cells = [];
  let build = 0;
  for (const n of SIZES) {
    const r = measure(pool, n);
    cells.push(`${fmt(r.pick)} /${fmt(r.account)}`);
    if (n === 10_000) build = r.buildMs;
    rows.push({ label, n, ...r });
  }
  console.log([label.padEnd(30), ...cells.map((c) => c.padStart(17)), build.toFixed(1).padStart(14)].join(' '));
}

// Table builds on their own, best of 5 (the first build also pays for JIT warm-up).
function bestOf(fn, runs = 5) {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}
const big = makeHosts(10_000);
const ringMs = bestOf(() => createBalancer({ algorithm: 'consistent_hash', consistentHash: { virtualNodes: 100 } }, big, { random: Math.random, clock }));
const maglevMs = bestOf(() =>
  buildMaglevTable(
    big.map((h) => h.id),
    big.map((h) => h.weight),
  ),
);
const maglevEqualMs = bestOf(() =>
  buildMaglevTable(
    big.map((h) => h.id),
    big.map(() => 1),
  ),
);
console.log(`\ntable build at 10,000 backends (best of 5):`);
console.log(`  consistent_hash ring, 100 vnodes per backend (1M points), weights 1..10:   ${ringMs.toFixed(1)} ms`);
console.log(`  maglev 65537, weights 1..10:                                           ${maglevMs.toFixed(1)} ms`);
console.log(`  maglev 65537, equal weights:                                           ${maglevEqualMs.toFixed(1)} ms`);

const worst = rows.filter((r) => r.n === 10_000).reduce((a, b) => (b.pick > a.pick ? b : a));
console.log(
  `\nslowest pick at 10,000 backends: ${worst.label} ${worst.pick.toFixed(1)} ns (target < 1000 ns); maglev build ${maglevMs.toFixed(1)} ms (target < 50 ms)`,
);
