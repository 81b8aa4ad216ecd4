// Starts the project the way the peer benchmark needs it: a real etcd, a real control plane, and a
// data plane configured (through the REST API) to balance over the peers' nginx backends on
// 127.0.0.1:9001-9003. Stops everything on SIGTERM/SIGINT. Not a test: run by bench/proxy.sh.
//   node bench/start-project.mjs [--listen 127.0.0.1:8090] [--workers 1] [--backends 9001,9002,9003] [--access-log off]
// [--extra-config FILE]: pools, routes and listeners (JSON) added to the config; [--port-offset N]
// moves etcd's, the control plane's and the admin ports by N, so two benches can run side by side.
// With --https-port P and --tls-dir DIR (deploy/local-tls.mjs makes it) the planes speak mutual
// TLS and the config adds an HTTPS listener on P (TLS 1.3 only) with DIR's demo certificate, and
// with --https-full-port Q one more on Q without session resumption (every handshake a full one);
// --nodes N starts N data planes, node i binding those listeners on 127.0.0.i (bench/tls.sh).
// The data plane runs on jemalloc as shipped; --malloc system (or LB_BENCH_MALLOC=system for every
// bench) puts it on glibc's malloc, for side-by-side runs.
// With --tcp-port P the config adds a tcp listener on P, routed to a pool of the same backends
// with connection limits out of the way (bench/tcp.sh).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { localTls } from '../deploy/local-tls.mjs';
import { withJemalloc } from '../packages/data-plane/dist/runtime/allocator.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:8090' },
    workers: { type: 'string', default: '1' },
    backends: { type: 'string', default: '9001,9002,9003' },
    algorithm: { type: 'string', default: 'round_robin' },
    'access-log': { type: 'string', default: 'off' },
    'https-port': { type: 'string' },
    'https-full-port': { type: 'string' },
    'tls-dir': { type: 'string' },
    nodes: { type: 'string', default: '1' },
    'tcp-port': { type: 'string' },
    'extra-config': { type: 'string' },
    'port-offset': { type: 'string', default: '0' },
    // More data-plane flags, space-separated (bench/metrics-cost.mjs: --metrics-backend-limit 0 …).
    'data-plane-args': { type: 'string', default: '' },
    // The data plane's malloc: jemalloc, as the shipped launchers give it, or system (glibc's).
    malloc: { type: 'string', default: process.env.LB_BENCH_MALLOC ?? 'jemalloc' },
  },
});
if (values.malloc !== 'jemalloc' && values.malloc !== 'system') throw new Error('--malloc must be jemalloc or system');
const nodeIds = Array.from({ length: Number(values.nodes) }, (_, i) => (i === 0 ? 'bench' : `bench-${i + 1}`));
const tls = values['tls-dir'] === undefined ? undefined : localTls(values['tls-dir'], nodeIds);
const dir = mkdtempSync(join(tmpdir(), 'lb-bench-'));
const children = [];
const offset = Number(values['port-offset']);
const ports = { etcd: 22379 + offset, etcdPeer: 22380 + offset, cpHttp: 28080 + offset, cpGrpc: 28000 + offset, admin: 29901 + offset };

function start(name, command, args, env = process.env) {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...env, LB_LOG_LEVEL: 'warn' } });
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
  ...(tls === undefined
    ? []
    : ['--secrets-key-file', tls.secretsKey, '--grpc-tls-cert', tls.controlPlane.cert, '--grpc-tls-key', tls.controlPlane.key, '--grpc-client-ca', tls.ca]),
]);
await waitOk(`http://127.0.0.1:${ports.cpHttp}/readyz`);
const adminToken = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
const backends = values.backends.split(',').map((port, i) => ({ id: `nginx-${i + 1}`, address: `127.0.0.1:${port}` }));
const extra = values['extra-config'] === undefined ? {} : JSON.parse(readFileSync(values['extra-config'], 'utf8'));
const res = await fetch(`http://127.0.0.1:${ports.cpHttp}/v1/config`, {
  method: 'PUT',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
  body: JSON.stringify({
    pools: {
      bench: { algorithm: values.algorithm, backends },
      // L4 routes get pools of their own; a bench opens more connections than the default limits (1024).
      ...(values['tcp-port'] === undefined
        ? {}
        : { 'bench-tcp': { algorithm: values.algorithm, backends, circuitBreaker: { maxConnections: 100000, perBackend: { maxConnections: 100000 } } } }),
      ...extra.pools,
    },
    routes: {
      all: { match: { pathPrefix: '/' }, pools: [{ pool: 'bench' }] },
      ...(values['tcp-port'] === undefined ? {} : { tcp: { listeners: ['tcp'], pools: [{ pool: 'bench-tcp' }] } }),
      ...extra.routes,
    },
    ...(values['tcp-port'] === undefined && extra.listeners === undefined
      ? {}
      : {
          listeners: {
            ...(values['tcp-port'] === undefined ? {} : { tcp: { port: Number(values['tcp-port']), protocol: 'tcp', maxConnections: 100000 } }),
            ...extra.listeners,
          },
        }),
    ...(tls === undefined || values['https-port'] === undefined
      ? {}
      : {
          certificates: { site: { certificate: tls.demo.cert, privateKey: tls.demo.key } },
          listeners: {
            https: { port: Number(values['https-port']), protocol: 'https', tls: { certificates: ['site'], minVersion: 'TLSv1.3' } },
            ...(values['https-full-port'] === undefined
              ? {}
              : {
                  'https-full': {
                    port: Number(values['https-full-port']),
                    protocol: 'https',
                    tls: { certificates: ['site'], minVersion: 'TLSv1.3', sessionResumption: false },
                  },
                }),
          },
        }),
  }),
});
if (!res.ok) throw new Error(`config: ${res.status} ${await res.text()}`);
const [host, port] = [values.listen.slice(0, values.listen.lastIndexOf(':')), Number(values.listen.slice(values.listen.lastIndexOf(':') + 1))];
for (const [i, id] of nodeIds.entries()) {
  // On the allocator the shipped launchers give the data plane (packages/data-plane/src/runtime/allocator.ts).
  start(
    id,
    process.execPath,
    [
      'packages/data-plane/dist/main.js',
      '--control-plane',
      `127.0.0.1:${ports.cpGrpc}`,
      '--listen',
      `${host}:${port + i}`,
      '--admin-listen',
      `127.0.0.1:${ports.admin + i}`,
      '--node-id',
      id,
      '--cache-file',
      join(dir, `snapshot-${id}.json`),
      '--workers',
      values.workers,
      '--access-log',
      values['access-log'],
      ...(tls === undefined ? [] : ['--tls-ca', tls.ca, '--tls-cert', tls.node(id).cert, '--tls-key', tls.node(id).key, '--bind-address', `127.0.0.${i + 1}`]),
      ...values['data-plane-args'].split(' ').filter((a) => a !== ''),
    ],
    values.malloc === 'jemalloc' ? withJemalloc(process.env) : process.env,
  );
  await waitOk(`http://127.0.0.1:${ports.admin + i}/readyz`);
}
console.error(`project ready on http://${values.listen} (workers ${values.workers}, nodes ${nodeIds.length})`);
