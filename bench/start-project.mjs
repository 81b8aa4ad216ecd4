// Starts the project the way the peer benchmark needs it: a real etcd, a real control plane, and a
// data plane configured (through the REST API) to balance over the peers' nginx backends on
// 127.0.0.1:9001-9003. Stops everything on SIGTERM/SIGINT. Not a test: run by bench/proxy.sh.
//   node bench/start-project.mjs [--listen 127.0.0.1:8090] [--workers 1] [--backends 9001,9002,9003] [--access-log off]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:8090' },
    workers: { type: 'string', default: '1' },
    backends: { type: 'string', default: '9001,9002,9003' },
    algorithm: { type: 'string', default: 'round_robin' },
    'access-log': { type: 'string', default: 'off' },
  },
});
const dir = mkdtempSync(join(tmpdir(), 'lb-bench-'));
const children = [];
const ports = { etcd: 22379, etcdPeer: 22380, cpHttp: 28080, cpGrpc: 28000, admin: 29901 };

function start(name, command, args) {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LB_LOG_LEVEL: 'warn' } });
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`${name} exited (${code})`);
      stop(1);
    }
  });
  children.push(child);
}

async function waitOk(url) {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready: ${url}`);
}

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const child of children.reverse()) child.kill('SIGTERM');
  setTimeout(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  }, 1500);
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));

const etcdUrl = `http://127.0.0.1:${ports.etcd}`;
const peer = `http://127.0.0.1:${ports.etcdPeer}`;
start('etcd', 'etcd', [
  '--data-dir',
  join(dir, 'etcd'),
  '--listen-client-urls',
  etcdUrl,
  '--advertise-client-urls',
  etcdUrl,
  '--listen-peer-urls',
  peer,
  '--initial-advertise-peer-urls',
  peer,
  '--initial-cluster',
  `default=${peer}`,
  '--log-level',
  'error',
]);
await waitOk(`${etcdUrl}/health`);
start('control-plane', process.execPath, [
  'packages/control-plane/dist/main.js',
  '--etcd',
  etcdUrl,
  '--http-listen',
  `127.0.0.1:${ports.cpHttp}`,
  '--grpc-listen',
  `127.0.0.1:${ports.cpGrpc}`,
  // The control plane creates the file with an admin secret; the config PUT below uses it.
  '--admin-token-file',
  join(dir, 'admin-token'),
]);
await waitOk(`http://127.0.0.1:${ports.cpHttp}/readyz`);
const adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
const backends = values.backends.split(',').map((port, i) => ({ id: `nginx-${i + 1}`, address: `127.0.0.1:${port}` }));
const res = await fetch(`http://127.0.0.1:${ports.cpHttp}/v1/config`, {
  method: 'PUT',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
  body: JSON.stringify({
    pools: { bench: { algorithm: values.algorithm, backends } },
    routes: { all: { match: { pathPrefix: '/' }, pools: [{ pool: 'bench' }] } },
  }),
});
if (!res.ok) throw new Error(`config: ${res.status} ${await res.text()}`);
start('data-plane', process.execPath, [
  'packages/data-plane/dist/main.js',
  '--control-plane',
  `127.0.0.1:${ports.cpGrpc}`,
  '--listen',
  values.listen,
  '--admin-listen',
  `127.0.0.1:${ports.admin}`,
  '--node-id',
  'bench',
  '--cache-file',
  join(dir, 'snapshot.json'),
  '--workers',
  values.workers,
  '--access-log',
  values['access-log'],
]);
await waitOk(`http://127.0.0.1:${ports.admin}/readyz`);
console.error(`project ready on http://${values.listen} (workers ${values.workers})`);
