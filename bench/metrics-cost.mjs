// What metrics cost the data plane (issue 15: throughput with metrics on falls by at most 5 %).
// Two parts, because the request path's counters have no off switch (they are plain numbers on
// objects the request already holds) while everything else does:
//   1. the request path's share: the metric updates one proxied request makes (route counter by
//      status class, two latency histograms, the backend's outcome and time to response head, two
//      clock reads), timed in a loop over the built classes, against the CPU a whole request costs;
//   2. the rest, end to end: CPU per request (utime + stime from /proc, as cpu-per-request.mjs) of
//      two data planes of one project behind the same nginx backends, "quiet" (--metrics-backend-limit
//      0, --traffic-report-ms 0, never scraped) and "observed" (per-backend series on, a traffic
//      report every second, /metrics scraped every second — 15 times Prometheus' default rate),
//      in alternating rounds.
// A benchmark, not a test: it prints figures and asserts nothing.
//   node bench/metrics-cost.mjs [--rounds 6] [--seconds 4] [--connections 64]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BackendRuntime } from '../packages/data-plane/dist/balancer/host.js';
import { RequestStats } from '../packages/data-plane/dist/metrics.js';
import { LatencyHistogram } from '../packages/data-plane/dist/metrics/histogram.js';
import { ADMIN, dataPlanePids, machine, ROOT, sleep, startProject, stopAll, waitOk, wrk } from './lib.mjs';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '6' }, seconds: { type: 'string', default: '4' }, connections: { type: 'string', default: '64' } },
});
const BACKENDS = [9121, 9122, 9123];

// --- 1. the request path's metric updates, per request ---
function requestPathNs() {
  const stats = new RequestStats('site', 'web');
  const duration = new LatencyHistogram({ route: 'site' });
  const upstream = new LatencyHistogram({ pool: 'web' });
  const rt = new BackendRuntime();
  const n = 5_000_000;
  const statuses = [200, 200, 200, 404, 503];
  let sink = 0;
  // The same loop without the updates: what the loop itself costs.
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += statuses[i % 5] + (i & 7) * 0.1;
  const empty = Number(process.hrtime.bigint() - t);
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const status = statuses[i % 5];
    const started = performance.now();
    const ms = (i & 7) * 0.1 + (performance.now() - started);
    stats.count(status);
    duration.observe(ms + 0.2);
    upstream.observe(ms);
    rt.responseSeconds += ms / 1000;
    rt.responses++;
    rt.outcomes[(status / 100) | 0]++;
    sink += status;
  }
  const full = Number(process.hrtime.bigint() - t);
  if (sink === 0) console.log('');
  return (full - empty) / n;
}

// --- 2. everything else, end to end ---
const TICK_US = 1e6 / 100;
function cpuUs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

// Two data planes of one project, side by side behind the same backends, measured in alternating
// rounds: the machine's load hits both alike.
const SETTINGS = {
  quiet: { url: 'http://127.0.0.1:8090/', admin: ADMIN, scrape: false },
  observed: { url: 'http://127.0.0.1:8091/', admin: 'http://127.0.0.1:29911', scrape: true },
};

async function round(name, pid) {
  const { url, admin, scrape } = SETTINGS[name];
  let scraping = scrape;
  let scrapes = 0;
  const scraper = (async () => {
    while (scraping) {
      await (await fetch(`${admin}/metrics`)).text();
      scrapes++;
      await sleep(1000);
    }
  })();
  const before = cpuUs(pid);
  const r = await wrk(url, { connections: Number(values.connections), seconds: Number(values.seconds) });
  const used = cpuUs(pid) - before;
  scraping = false;
  await scraper;
  return { usPerRequest: used / Math.max(1, r.requests), rps: r.rps, p99: r.p99, scrapes, errors: r.errors };
}

const nsPerRequest = requestPathNs();
const nginx = spawn('nginx', ['-c', join(ROOT, 'bench/conf/backend-nginx.conf')], { stdio: 'inherit' });
process.on('exit', () => nginx.kill('SIGTERM'));
await waitOk(`http://127.0.0.1:${BACKENDS[0]}/`);
const project = await startProject({ workers: 1, backends: BACKENDS, dataPlaneArgs: ['--metrics-backend-limit', '0', '--traffic-report-ms', '0'] });
const [quietPid] = dataPlanePids();
const dir = mkdtempSync(join(tmpdir(), 'lb-metrics-cost-'));
const observed = spawn(
  process.execPath,
  [
    'packages/data-plane/dist/main.js',
    '--control-plane',
    '127.0.0.1:28000',
    '--listen',
    '127.0.0.1:8091',
    '--admin-listen',
    '127.0.0.1:29911',
    '--node-id',
    'observed',
    '--cache-file',
    join(dir, 'snapshot.json'),
    '--workers',
    '1',
    '--metrics-backend-limit',
    '100',
    '--traffic-report-ms',
    '1000',
  ],
  { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LB_LOG_LEVEL: 'warn' } },
);
process.on('exit', () => observed.kill('SIGTERM'));
await waitOk('http://127.0.0.1:29911/readyz');
for (const url of [SETTINGS.quiet.url, SETTINGS.observed.url]) await wrk(url, { connections: Number(values.connections), seconds: 1 });
const rows = { quiet: [], observed: [] };
for (let i = 0; i < Number(values.rounds); i++) {
  rows.quiet.push(await round('quiet', quietPid));
  rows.observed.push(await round('observed', observed.pid));
}
// Without traffic the two differ only by the scrapes and reports: their CPU per second, measured
// over 10 s, is a steadier figure than the difference of two noisy per-request ones.
const idleSeconds = 10;
const idleBefore = [cpuUs(quietPid), cpuUs(observed.pid)];
let idleScrapes = 0;
for (let i = 0; i < idleSeconds; i++) {
  await (await fetch(`${SETTINGS.observed.admin}/metrics`)).text();
  idleScrapes++;
  await sleep(1000);
}
const idleUsPerSecond = [cpuUs(quietPid) - idleBefore[0], cpuUs(observed.pid) - idleBefore[1]].map((us) => us / idleSeconds);
observed.kill('SIGTERM');
await project.stop();
nginx.kill('SIGTERM');
stopAll();
rmSync(dir, { recursive: true, force: true });

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const quietUs = median(rows.quiet.map((r) => r.usPerRequest));
const observedUs = median(rows.observed.map((r) => r.usPerRequest));
console.log(
  `metrics cost: ${machine()}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, wrk -t1 -c${values.connections} -d${values.seconds}s x ${values.rounds} rounds per setting, --workers 1, 16-byte responses from nginx`,
);
console.log(
  `  request path's metric updates: ${nsPerRequest.toFixed(1)} ns per request = ${((nsPerRequest / 1000 / quietUs) * 100).toFixed(2)} % of the ${quietUs.toFixed(1)} µs CPU a request costs`,
);
console.log('  setting    round   µs CPU/request   requests/s   p99   scrapes');
for (const [name, list] of Object.entries(rows)) {
  for (const [i, r] of list.entries())
    console.log(
      `  ${name.padEnd(9)} ${String(i + 1).padStart(6)}   ${r.usPerRequest.toFixed(1).padStart(14)}   ${r.rps.toFixed(0).padStart(10)}   ${r.p99}   ${r.scrapes}${r.errors ? `  ${r.errors}` : ''}`,
    );
}
console.log(
  `  medians: quiet ${quietUs.toFixed(1)} µs, observed ${observedUs.toFixed(1)} µs: scrapes and reports cost ${(((observedUs - quietUs) / quietUs) * 100).toFixed(1)} %`,
);
const extraUsPerSecond = idleUsPerSecond[1] - idleUsPerSecond[0];
const quietRps = median(rows.quiet.map((r) => r.rps));
console.log(
  `  idle ${idleSeconds} s (${idleScrapes} scrapes, ${idleSeconds} reports): quiet ${idleUsPerSecond[0].toFixed(0)} µs CPU/s, observed ${idleUsPerSecond[1].toFixed(0)} µs CPU/s: ` +
    `scrapes and reports take ${extraUsPerSecond.toFixed(0)} µs/s, ${((extraUsPerSecond / (quietRps * quietUs)) * 100).toFixed(2)} % of the CPU of ${quietRps.toFixed(0)} requests/s`,
);
