// The local stack for people trying the balancer: real etcd as a child process, one control plane,
// two data planes, three demo backends, a demo config. Ctrl-C stops everything in reverse order.
// Flags: --fresh (wipe .stack/ first). Ports are fixed so the README's commands work.
// The control plane makes its admin token in .stack/admin-token on the first start (and seeds
// the empty etcd from deploy/demo/lb.yaml plus an HTTPS listener); this prints it with the lines
// to use it. The planes speak mutual TLS with throwaway certificates (deploy/local-tls.mjs), and
// the data planes serve the demo over HTTPS on :8443 (HTTP/2 or HTTP/1.1 by ALPN), dp-1 on 127.0.0.1
// and dp-2 on 127.0.0.2.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withJemalloc } from '../packages/data-plane/dist/runtime/allocator.js';
import { localTls } from './local-tls.mjs';

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
  https: 8443,
  backends: [9101, 9102, 9103],
};
/** Where each data plane binds the config's listeners: one host, so one loopback address each. */
const BIND = { 'dp-1': '127.0.0.1', 'dp-2': '127.0.0.2' };
const CP_URL = `http://127.0.0.1:${PORTS.cpHttp}`;
const ADMIN_TOKEN_FILE = join(STACK, 'admin-token');

if (process.argv.includes('--fresh')) rmSync(STACK, { recursive: true, force: true });
mkdirSync(join(STACK, 'logs'), { recursive: true });
const tls = localTls(join(STACK, 'tls'), Object.keys(BIND));

/** The demo config plus its HTTPS listener and certificate (with the key, which the control plane stores encrypted). */
function bootstrapConfig() {
  const indent = (text, n) =>
    text
      .trimEnd()
      .split('\n')
      .map((line) => `${' '.repeat(n)}${line}`)
      .join('\n');
  const yaml = `${readFileSync(join(ROOT, 'deploy/demo/lb.yaml'), 'utf8').trimEnd()}
certificates:
  demo:
    certificate: |
${indent(tls.demo.cert, 6)}
    privateKey: |
${indent(tls.demo.key, 6)}
listeners:
  https:
    port: ${PORTS.https}
    protocol: https
    # HTTP/2 for clients that ask for it in the handshake (curl --http2, browsers), HTTP/1.1 for the rest.
    tls: { certificates: [demo], alpn: [h2, http/1.1] }
`;
  const path = join(STACK, 'lb.yaml');
  writeFileSync(path, yaml, { mode: 0o600 });
  return path;
}

const children = [];
let stopping = false;

function start(name, command, args, env = process.env) {
  const log = createWriteStream(join(STACK, 'logs', `${name}.log`), { flags: 'a' });
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
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

function portInUse(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
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
for (const host of Object.values(BIND)) {
  if (await portInUse(PORTS.https, host)) {
    console.error(`port ${PORTS.https} on ${host} is in use; stop whatever holds it (another stack?) and try again`);
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
  // Created with a new secret on the first start; kept (with etcd) until --fresh.
  '--admin-token-file',
  ADMIN_TOKEN_FILE,
  // The demo config goes in once, into an empty etcd; a restarted stack keeps whatever was done since.
  '--bootstrap-config',
  bootstrapConfig(),
  // Private keys are encrypted in etcd with this key, and pushed only over mutual TLS.
  '--secrets-key-file',
  tls.secretsKey,
  '--grpc-tls-cert',
  tls.controlPlane.cert,
  '--grpc-tls-key',
  tls.controlPlane.key,
  '--grpc-client-ca',
  tls.ca,
]);
await waitOk(`${CP_URL}/readyz`, 'control plane');
const adminToken = readFileSync(ADMIN_TOKEN_FILE, 'utf8').trim();
// Seeding is the control plane's own first step after it starts: wait for it, so the data planes
// start on the demo config and the first request through them already finds a route.
for (let deadline = Date.now() + 30_000; ; ) {
  const res = await fetch(`${CP_URL}/v1/config`, { headers: { authorization: `Bearer ${adminToken}` } });
  if (res.ok && (await res.json()).version > 0) break;
  if (Date.now() > deadline) throw new Error('the control plane did not seed the demo config; see .stack/logs/control-plane.log');
  await new Promise((r) => setTimeout(r, 200));
}

for (const [id, port, admin] of [
  ['dp-1', PORTS.dp1, PORTS.dp1Admin],
  ['dp-2', PORTS.dp2, PORTS.dp2Admin],
]) {
  // jemalloc when installed (deploy/bootstrap.sh installs it), as the image and the systemd unit give it.
  start(
    id,
    process.execPath,
    [
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
      '--bind-address',
      BIND[id],
      '--tls-ca',
      tls.ca,
      '--tls-cert',
      tls.node(id).cert,
      '--tls-key',
      tls.node(id).key,
    ],
    withJemalloc(process.env),
  );
  await waitOk(`http://127.0.0.1:${admin}/readyz`, id);
}

console.log(`
The stack is up (logs in .stack/logs/, Ctrl-C to stop):
  control plane REST   ${CP_URL}           (OpenAPI: ${CP_URL}/docs)
  control plane gRPC   127.0.0.1:${PORTS.cpGrpc}  (mutual TLS; certificates in .stack/tls/)
  data plane dp-1      http://127.0.0.1:${PORTS.dp1}     https://localhost:${PORTS.https} (127.0.0.1)   admin http://127.0.0.1:${PORTS.dp1Admin}/config
  data plane dp-2      http://127.0.0.1:${PORTS.dp2}     https://demo.localhost:${PORTS.https} on 127.0.0.2   admin http://127.0.0.1:${PORTS.dp2Admin}/config
  demo backends        ${PORTS.backends.map((p) => `127.0.0.1:${p}`).join('  ')}
  etcd                 ${etcdUrl}

Admin token (kept in .stack/admin-token): ${adminToken}

In another shell, from ${ROOT}:
  export LB_URL=${CP_URL} LB_TOKEN=$(cat .stack/admin-token) PATH="$PWD/node_modules/.bin:$PATH"
  lbctl get config
  curl -s -H "authorization: Bearer $LB_TOKEN" ${CP_URL}/v1/nodes
Send traffic:  curl http://127.0.0.1:${PORTS.dp1}/   and   curl http://127.0.0.1:${PORTS.dp1}/api/x
Over HTTPS:    curl --cacert .stack/tls/ca.pem https://localhost:${PORTS.https}/
               curl --cacert .stack/tls/ca.pem --resolve demo.localhost:${PORTS.https}:127.0.0.2 https://demo.localhost:${PORTS.https}/
`);
