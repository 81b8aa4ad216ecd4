// The routing decision on its own: Host normalization + route match + backend pick (round robin),
// the synchronous part of every request, on a table of 10,000 backends and 1,000 routes (exact
// hosts, wildcards, path prefixes, fall-backs between tiers, and one route in ten with conditions
// on headers, methods or the query that requests meet or miss). Target (issues 3 and 12): under 1 µs.
// Per-algorithm pick cost is bench/pick-cost.* (the algorithms' own benchmark).
//   node bench/routing.mjs [--backends 10000] [--routes 1000] [--iterations 3000000]
import { parseArgs } from 'node:util';
import { validateConfig } from '@lb/shared';
import { compileRoutingTable, DataPlaneMetrics, normalizeHost, pickBackend, RequestPickContext } from '../packages/data-plane/dist/index.js';
import { machine } from './lib.mjs';

const { values } = parseArgs({
  options: { backends: { type: 'string', default: '10000' }, routes: { type: 'string', default: '1000' }, iterations: { type: 'string', default: '3000000' } },
});
const nBackends = Number(values.backends);
const nRoutes = Number(values.routes);
const iterations = Number(values.iterations);

const backends = Array.from({ length: nBackends }, (_, i) => ({ id: `b${i}`, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080` }));
const pools = { big: { algorithm: 'round_robin', backends }, small: { algorithm: 'round_robin', backends: backends.slice(0, 8) } };
const routes = {};
for (let i = 0; i < nRoutes; i++) {
  const kind = i % 10;
  const pool = i % 7 === 0 ? 'small' : 'big';
  if (kind < 5) routes[`host-${i}`] = { match: { host: `svc-${i}.example.com`, pathPrefix: i % 2 ? `/api/v${i % 5}` : '/' }, pools: [{ pool }] };
  else if (kind === 9) {
    // A canary beside an ordinary route on the same host and prefix.
    routes[`canary-${i}`] = {
      match: { host: `svc-${i - 9}.example.com`, pathPrefix: '/', headers: [{ name: 'x-canary', exact: 'on' }], methods: ['GET'] },
      pools: [{ pool: 'small' }],
    };
  } else if (kind < 6) routes[`wild-${i}`] = { match: { host: `*.zone-${i}.example.com` }, pools: [{ pool }] };
  else
    routes[`path-${i}`] = {
      match: { pathPrefix: `/p${i}/` },
      pools: [
        { pool: 'big', weight: 3 },
        { pool: 'small', weight: 1 },
      ],
    };
}
routes.fallback = { match: { pathPrefix: '/' }, pools: [{ pool: 'big' }] };
const checked = validateConfig({ pools, routes });
if (!checked.ok) throw new Error(JSON.stringify(checked.errors.slice(0, 3)));

// No sockets: the table only needs something to hand out per address.
const upstreams = {
  acquire: (address) => ({
    address,
    dispatch() {
      return true;
    },
  }),
};
const t0 = performance.now();
const table = compileRoutingTable(
  { version: 1, config: checked.value },
  { upstreams, metrics: new DataPlaneMetrics({ defaultMetrics: false }), random: Math.random },
);
const compileMs = performance.now() - t0;

// Requests that hit every tier: exact hosts (with port/case), wildcards, prefixes, fall-backs.
const requests = [];
for (let i = 0; i < 4096; i++) {
  const r = (i * 7919) % nRoutes;
  switch (i % 5) {
    case 0:
      requests.push({ host: `svc-${r - (r % 10)}.example.com`, url: `/api/v${r % 5}/items?id=${i}` });
      break;
    case 1:
      requests.push({ host: `SVC-${r - (r % 10) + 2}.Example.com:8080`, url: '/index.html' });
      break;
    case 2:
      requests.push({ host: `a.b.zone-${r - (r % 10) + 5}.example.com`, url: '/x' });
      break;
    case 3:
      requests.push({ host: 'unknown.example.org', url: `/p${r - (r % 10) + 6}/thing` });
      break;
    default:
      requests.push({ host: undefined, url: '/nothing/matches/but/the/fallback' });
  }
}
// Every other request carries the canary header and a few ordinary ones.
const rawHeaders = requests.map((q, i) => [
  ...(q.host === undefined ? [] : ['Host', q.host]),
  'User-Agent',
  'bench/1.0',
  'Accept',
  '*/*',
  ...(i % 2 === 0 ? ['X-Canary', 'on'] : []),
]);
const socket = { remoteAddress: '127.0.0.1' };
const ctx = new RequestPickContext();
const out = { target: undefined };

let sink = 0;
function run(n) {
  const m = requests.length - 1;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const q = requests[i & m];
    ctx.reset(rawHeaders[i & m], q.url, socket, 'GET');
    const route = table.match(q.host === undefined ? undefined : normalizeHost(q.host), q.url, ctx);
    if (route === undefined) continue;
    const b = pickBackend(route, out, ctx);
    if (b !== undefined) sink += b.weight;
  }
  return Number(process.hrtime.bigint() - start) / n;
}
run(200_000); // warm up: let the JIT settle
const samples = Array.from({ length: 7 }, () => run(Math.floor(iterations / 7)));
samples.sort((a, b) => a - b);
const median = samples[3];
console.log(`routing: ${machine()}, ${nBackends} backends, ${Object.keys(routes).length} routes (table compiled in ${compileMs.toFixed(0)} ms)`);
console.log(
  `  match + pick (round robin): median ${median.toFixed(0)} ns, best ${samples[0].toFixed(0)} ns, worst ${samples[6].toFixed(0)} ns per request over ${iterations} requests (target < 1000 ns)${sink < 0 ? '' : ''}`,
);
