/** Shared test fixtures: a silent logger, real HTTP backends on port 0, a plain HTTP client, config builders. */
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { configDigest, resourceHash, resourcesOf, type Config, type ConfigSnapshot } from '@lb/shared';
import { SnapshotApplier, type ApplierDeps } from '../src/config/snapshot-applier.js';
import { HealthStore } from '../src/health/health-store.js';
import { DataPlaneMetrics } from '../src/metrics.js';
import { DataPlaneNode, type DataPlaneOptions } from '../src/node.js';
import type { HttpServerKind } from '../src/proxy/proxy-server.js';
import { UpstreamPools, type UpstreamClient } from '../src/upstream/upstream-pools.js';

export const silentLogger = pino({ level: 'silent' });

/** A SnapshotApplier on quiet, deterministic parts (`deps` replaces any); close `upstreams` when done. */
export function testApplier(deps: Partial<ApplierDeps> = {}): { applier: SnapshotApplier; upstreams: UpstreamPools; metrics: DataPlaneMetrics } {
  const upstreams = new UpstreamPools();
  const metrics = new DataPlaneMetrics({ defaultMetrics: false });
  const applier = new SnapshotApplier({
    upstreams,
    metrics,
    health: new HealthStore(),
    logger: silentLogger,
    random: () => 0,
    clock: { now: () => 0 },
    ...deps,
  });
  return { applier, upstreams, metrics };
}

export interface Backend {
  server: Server;
  address: string;
  /** Requests seen, in order. */
  seen: { method: string; url: string; headers: IncomingMessage['headers']; rawHeaders: string[] }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A real node:http backend on 127.0.0.1 and a free port; by default answers its name. */
export async function startBackend(name: string, handler?: Handler): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders });
    if (handler) return handler(req, res);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain');
      res.end(name);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A plain node:http request, so tests can set Host and hop-by-hop headers freely. */
export function call(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A port nothing listens on (bound, read, released). */
export async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

let nonce = 0;
/** A full snapshot, as a control plane sends it (of history `historyId`, '' for none). */
export function snapshot(version: number, config: unknown, historyId = ''): ConfigSnapshot {
  const digest = historyId === '' ? '' : digestOf(config as Config);
  return { version, nonce: `n${++nonce}`, configJson: JSON.stringify(config), baseVersion: 0, upserted: [], removed: [], historyId, digest };
}

function digestOf(config: Config): string {
  const hashes = new Map<string, string>();
  for (const { key, value } of resourcesOf(config)) hashes.set(key, resourceHash(JSON.stringify(value)));
  return configDigest(hashes);
}

/** The delta a control plane sends from version `from` to `to` of one history (configs as it would send them). */
export function delta(from: { version: number; config: Config }, to: { version: number; config: Config }, historyId: string): ConfigSnapshot {
  const before = new Map([...resourcesOf(from.config)].map((r) => [r.key, JSON.stringify(r.value)]));
  const after = [...resourcesOf(to.config)];
  const upserted = after
    .filter((r) => before.get(r.key) !== JSON.stringify(r.value))
    .map((r) => ({ type: r.section, name: r.name, json: JSON.stringify(r.value) }));
  const kept = new Set(after.map((r) => r.key));
  const removed = [...resourcesOf(from.config)].filter((r) => !kept.has(r.key)).map((r) => ({ type: r.section, name: r.name }));
  return { version: to.version, nonce: `n${++nonce}`, configJson: '', baseVersion: from.version, upserted, removed, historyId, digest: digestOf(to.config) };
}

/** One pool `web` of the given backends and one catch-all route to it. */
export function simpleConfig(addresses: string[], algorithm: 'round_robin' | 'weighted_round_robin' = 'round_robin'): Config {
  return {
    pools: { web: { algorithm, backends: addresses.map((address, i) => ({ id: `b${i}`, address, weight: 1, state: 'active' as const })) } },
    routes: { all: { match: {}, pools: [{ pool: 'web', weight: 1 }] } },
  };
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface TestNode {
  node: DataPlaneNode;
  /** Applies `config` as the next version (1, 2, …) and returns it; throws if the node NACKs it. */
  apply(config: unknown): number;
}

/** An in-process data plane on loopback ports with no control plane: tests push snapshots through `apply`. */
export async function startTestNode(options: Partial<DataPlaneOptions> = {}): Promise<TestNode> {
  const node = new DataPlaneNode({
    controlPlanes: [],
    listen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    nodeId: 'test',
    logger: silentLogger,
    defaultMetrics: false,
    ...options,
  });
  await node.start();
  let version = 0;
  return {
    node,
    apply(config: unknown): number {
      const outcome = node.applier.onConfig(snapshot(++version, config));
      // Configs without listeners apply synchronously.
      if (outcome instanceof Promise) throw new Error('apply() takes configs without listeners; await onConfig() for those');
      if (!outcome.ok) throw new Error(outcome.error);
      return version;
    },
  };
}

/**
 * Every pairing of client-side server and upstream client: suites that must hold on the built-in
 * engines and on their fallbacks (node:http's server, undici's client), alone and together.
 */
export const ENGINE_PAIRS = [
  { server: 'native', client: 'native' },
  { server: 'native', client: 'undici' },
  { server: 'node', client: 'native' },
  { server: 'node', client: 'undici' },
] as const satisfies ReadonlyArray<{ server: HttpServerKind; client: UpstreamClient }>;
