// Helpers shared by the bench scripts: a loopback backend in a child process, the project started
// through bench/start-project.mjs (real etcd + control plane + data plane), RSS of the data plane
// processes, and wrk. Benchmarks, not tests: they print figures and assert nothing about speed.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN = 'http://127.0.0.1:29901';

const children = [];
function own(child) {
  children.push(child);
  return child;
}
export function stopAll() {
  for (const child of children.reverse()) if (child.exitCode === null) child.kill('SIGTERM');
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    stopAll();
    process.exit(130);
  });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitOk(url, tries = 300) {
  for (let i = 0; i < tries; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`not ready: ${url}`);
}

/** A node:http backend answering every GET with `bytes` bytes (one preallocated buffer). */
export async function startBackend(port, bytes) {
  const code = `
    const body = Buffer.alloc(${bytes}, 97);
    require('node:http').createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    }).listen(${port}, '127.0.0.1');`;
  own(spawn(process.execPath, ['-e', code], { stdio: 'inherit' }));
  await waitOk(`http://127.0.0.1:${port}/`);
}

/** etcd + control plane + data plane, configured to balance over `backends` (ports). */
export async function startProject({ workers, backends, listen = '127.0.0.1:8090', accessLog = 'off', dataPlaneArgs = [] }) {
  const child = own(
    spawn(
      process.execPath,
      [
        join(ROOT, 'bench/start-project.mjs'),
        '--workers',
        String(workers),
        '--backends',
        backends.join(','),
        '--listen',
        listen,
        '--access-log',
        accessLog,
        // One `=` argument: a value that starts with `--` would read as a flag.
        `--data-plane-args=${dataPlaneArgs.join(' ')}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  );
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  for (let i = 0; i < 600 && !err.includes('project ready'); i++) {
    if (child.exitCode !== null) throw new Error(`start-project exited: ${err}`);
    await sleep(100);
  }
  if (!err.includes('project ready')) throw new Error(`project not ready: ${err}`);
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** Pids of the data plane: the process started as packages/data-plane/dist/main.js and its workers. */
export function dataPlanePids() {
  const pids = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('data-plane/dist/main.js') && cmd.includes('--node-id\0bench')) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** Resident set size of the data plane (all its processes), in MB. */
export function dataPlaneRssMb() {
  let kb = 0;
  for (const pid of dataPlanePids()) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

/** Runs wrk (without blocking the event loop) and resolves { rps, requests, p50, p99, errors, raw }. */
export async function wrk(url, { connections = 64, seconds = 8, threads = 1 } = {}) {
  const child = own(spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], { stdio: ['ignore', 'pipe', 'inherit'] }));
  let raw = '';
  child.stdout.on('data', (d) => {
    raw += d;
  });
  await new Promise((r) => child.once('exit', r));
  const pick = (re) => re.exec(raw)?.[1];
  return {
    rps: Number(pick(/Requests\/sec:\s+([\d.]+)/) ?? 0),
    requests: Number(pick(/(\d+) requests in/) ?? 0),
    p50: pick(/\n\s+50%\s+(\S+)/),
    p99: pick(/\n\s+99%\s+(\S+)/),
    errors: (raw.match(/(Non-2xx.*|Socket errors.*)/g) ?? []).join(' '),
    raw,
  };
}

/**
 * What a figure was measured on: the CPU model, the clock source and whether the kernel isolates
 * its page tables (PTI). The last two decide what a system call costs, which is a large share of a
 * proxied request's CPU on a VM (bench/README.md): figures from machines that differ in them do
 * not compare.
 */
export function machine() {
  const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const read = (path) => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  const model = /^model name\s*:\s*(.+)$/m.exec(read('/proc/cpuinfo'))?.[1] ?? process.arch;
  const clock = read('/sys/devices/system/clocksource/clocksource0/current_clocksource');
  const pti = read('/sys/devices/system/cpu/vulnerabilities/meltdown').includes('PTI') ? 'PTI on' : 'PTI off';
  return `${new Date().toISOString().slice(0, 10)}, ${model}, ${cpus} cores, clock ${clock}, ${pti}, node ${process.version}, data plane on ${process.env.LB_BENCH_MALLOC ?? 'jemalloc'} malloc`;
}
