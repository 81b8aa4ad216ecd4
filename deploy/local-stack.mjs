// The local stack for people trying the balancer: real etcd as a child process, one control plane,
// two data planes, three demo backends, a demo config. Ctrl-C stops everything in reverse order.
// Flags: --fresh (wipe .stack/ first). Ports are fixed so the README's curl commands work.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STACK = join(ROOT, '.stack');
const PORTS = {
  etcdClient: 12379,
  etcdPeer: 12380,
  cpHttp: 8080,
  cpGrpc: 18000,
  dp1: 8001,
  dp1Admin: 9901,
  dp2: 8002,
  dp2Admin: 9902,
  backends: [9101, 9102, 9103],
};
const CP_URL = `http://127.0.0.1:${PORTS.cpHttp}`;

if (process.argv.includes('--fresh')) rmSync(STACK, { recursive: true, force: true });
mkdirSync(join(STACK, 'logs'), { recursive: true });

const children = [];
let stopping = false;

function start(name, command, args) {
  const log = createWriteStream(join(STACK, 'logs', `${name}.log`), { flags: 'a' });
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited unexpectedly (${signal ?? code}); see .stack/logs/${name}.log`);
      void stop(1);
    }
  });
  children.push({ name, child });
  return child;
}

function portInUse(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitOk(url, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not become ready at ${url}; see .stack/logs/`);
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping the stack…');
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const allPorts = [PORTS.etcdClient, PORTS.etcdPeer, PORTS.cpHttp, PORTS.cpGrpc, PORTS.dp1, PORTS.dp1Admin, PORTS.dp2, PORTS.dp2Admin, ...PORTS.backends];
for (const port of allPorts) {
  if (await portInUse(port)) {
    console.error(`port ${port} on 127.0.0.1 is in use; stop whatever holds it (another stack?) and try again`);
    process.exit(1);
  }
}

const etcdUrl = `http://127.0.0.1:${PORTS.etcdClient}`;
const peerUrl = `http://127.0.0.1:${PORTS.etcdPeer}`;
start('etcd', 'etcd', [
  '--name',
  'local',
  '--data-dir',
  join(STACK, 'etcd'),
  '--listen-client-urls',
  etcdUrl,
  '--advertise-client-urls',
  etcdUrl,
  '--listen-peer-urls',
  peerUrl,
  '--initial-advertise-peer-urls',
  peerUrl,
  '--initial-cluster',
  `local=${peerUrl}`,
  '--log-level',
  'warn',
]);
await waitOk(`${etcdUrl}/health`, 'etcd');

for (const [i, port] of PORTS.backends.entries()) start(`backend-${i + 1}`, process.execPath, ['deploy/demo-backend.mjs', `backend-${i + 1}`, String(port)]);

start('control-plane', process.execPath, [
  'packages/control-plane/dist/main.js',
  '--etcd',
  etcdUrl,
  '--http-listen',
  `127.0.0.1:${PORTS.cpHttp}`,
  '--grpc-listen',
  `127.0.0.1:${PORTS.cpGrpc}`,
]);
await waitOk(`${CP_URL}/readyz`, 'control plane');

// The demo config goes in once; a restarted stack keeps whatever the operator did since.
const current = await (await fetch(`${CP_URL}/v1/config`)).json();
if (current.version === 0) {
  const demo = {
    pools: {
      web: {
        algorithm: 'weighted_round_robin',
        backends: [
          { id: 'backend-1', address: `127.0.0.1:${PORTS.backends[0]}`, weight: 1 },
          { id: 'backend-2', address: `127.0.0.1:${PORTS.backends[1]}`, weight: 1 },
        ],
      },
      api: { algorithm: 'round_robin', backends: [{ id: 'backend-3', address: `127.0.0.1:${PORTS.backends[2]}` }] },
    },
    routes: {
      default: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] },
      api: { match: { pathPrefix: '/api' }, pools: [{ pool: 'api', weight: 1 }] },
    },
  };
  const res = await fetch(`${CP_URL}/v1/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-change-message': 'demo config from deploy/local-stack.mjs', 'x-change-author': 'local-stack' },
    body: JSON.stringify(demo),
  });
  if (!res.ok) throw new Error(`applying the demo config failed: ${res.status} ${await res.text()}`);
}

for (const [id, port, admin] of [
  ['dp-1', PORTS.dp1, PORTS.dp1Admin],
  ['dp-2', PORTS.dp2, PORTS.dp2Admin],
]) {
  start(id, process.execPath, [
    'packages/data-plane/dist/main.js',
    '--control-plane',
    `127.0.0.1:${PORTS.cpGrpc}`,
    '--listen',
    `127.0.0.1:${port}`,
    '--admin-listen',
    `127.0.0.1:${admin}`,
    '--node-id',
    id,
    '--cache-file',
    join(STACK, `${id}-snapshot.json`),
  ]);
  await waitOk(`http://127.0.0.1:${admin}/readyz`, id);
}

console.log(`
The stack is up (logs in .stack/logs/, Ctrl-C to stop):
  control plane REST   ${CP_URL}           (try: curl ${CP_URL}/v1/config)
  control plane gRPC   127.0.0.1:${PORTS.cpGrpc}
  data plane dp-1      http://127.0.0.1:${PORTS.dp1}     admin http://127.0.0.1:${PORTS.dp1Admin}/config
  data plane dp-2      http://127.0.0.1:${PORTS.dp2}     admin http://127.0.0.1:${PORTS.dp2Admin}/config
  demo backends        ${PORTS.backends.map((p) => `127.0.0.1:${p}`).join('  ')}
  etcd                 ${etcdUrl}
Send traffic:  curl http://127.0.0.1:${PORTS.dp1}/   and   curl http://127.0.0.1:${PORTS.dp1}/api/x
`);
