// The control plane as operators run it: real etcd, two real replicas, a real gRPC node stream.
// Proves the guarantees of issue 2 that live in the control plane alone: writes race safely
// across replicas, every replica pushes every version, etcd outages answer 503 fast, restarts lose
// nothing, and bad flags exit 2.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as GrpcTypes from '../../packages/shared/node_modules/@grpc/grpc-js/build/src/index.js';
import { loadDiscovery, type ControlMessage, type NodeMessage } from '../../packages/shared/dist/index.js';
import { Child } from '../support/child.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

// @grpc/grpc-js is a dependency of the packages, not of the test root: load the very instance
// packages/shared uses, so loadDiscovery()'s client class and these credentials match.
const requireFromShared = createRequire(fileURLToPath(new URL('../../packages/shared/package.json', import.meta.url)));
const grpc = requireFromShared('@grpc/grpc-js') as typeof GrpcTypes;
const CP_MAIN = fileURLToPath(new URL('../../packages/control-plane/dist/main.js', import.meta.url));

/**
 * A data-plane node reduced to its stream: says Hello, records pushes, and answers each config
 * push at once — ACK, or NACK for the versions it is told to refuse (the control plane sends one
 * config push at a time and the next only once the last is answered).
 */
class TestNode {
  readonly received: ControlMessage[] = [];
  status: { code: number; details: string } | undefined;
  private readonly refused = new Map<number, string>();
  private readonly client: InstanceType<ReturnType<typeof loadDiscovery>['Client']>;
  private readonly call: GrpcTypes.ClientDuplexStream<NodeMessage, ControlMessage>;

  constructor(
    address: string,
    readonly id: string,
  ) {
    const { Client } = loadDiscovery();
    this.client = new Client(address, grpc.credentials.createInsecure());
    this.call = (this.client as unknown as { Stream(): TestNode['call'] }).Stream();
    this.call.on('data', (m: ControlMessage) => {
      this.received.push(m);
      if (m.config) this.answer(m.config);
    });
    this.call.on('status', (s: { code: number; details: string }) => (this.status = s));
    this.call.on('error', () => undefined);
    this.call.write({
      hello: { nodeId: id, zone: 'e2e', cachedVersion: 0, address: '127.0.0.1:1', cachedHealthRevision: 0, cachedHistoryId: '', cachedDigest: '' },
    });
  }

  /** Refuse every push of `version` from now on. */
  refuse(version: number, error: string): void {
    this.refused.set(version, error);
  }

  private answer(config: NonNullable<ControlMessage['config']>): void {
    const { nonce, version } = config;
    const error = this.refused.get(version);
    this.call.write(
      error === undefined ? { ack: { nonce, version, kind: 'PUSH_KIND_CONFIG' } } : { nack: { nonce, version, error, kind: 'PUSH_KIND_CONFIG' } },
    );
  }

  snapshot(version: number): NonNullable<ControlMessage['config']> | undefined {
    return this.received.find((m) => m.kind === 'config' && m.config?.version === version)?.config ?? undefined;
  }

  configVersions(): number[] {
    return this.received.filter((m) => m.kind === 'config').map((m) => m.config!.version);
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

interface NodeView {
  id: string;
  address: string;
  zone: string;
  connectedAt: string;
  configVersion: number;
  healthRevision: number;
  lastNack: { version: number; error: string; at: string } | null;
  replica: string;
  status: 'connected' | 'disconnected';
  lastSeenAt: string | null;
}

const pool = (id: string) => ({ algorithm: 'round_robin', backends: [{ id: 'b1', address: `10.0.0.${id.length}:80` }] });

let etcd: EtcdServer;
let a: ControlPlane;
let b: ControlPlane;

async function version(cp: ControlPlane): Promise<number> {
  return (await api('GET', `${cp.url}/v1/config`)).body.version as number;
}

async function nodesOf(cp: ControlPlane): Promise<NodeView[]> {
  const res = await api<{ nodes: NodeView[] }>('GET', `${cp.url}/v1/nodes`);
  if (res.status !== 200) throw new Error(`GET /v1/nodes → ${res.status}`);
  return res.body.nodes;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  a = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-a', '--etcd-grace-seconds', '3'] });
  b = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-b', '--etcd-grace-seconds', '3'] });
});

afterAll(async () => {
  await a?.stop().catch(() => undefined);
  await b?.stop().catch(() => undefined);
  await etcd?.stop();
});

describe('two control-plane replicas on one etcd', () => {
  it('a write through A is visible through B and pushed to the node B holds; the node shows on A', async () => {
    const node = new TestNode(b.grpcAddress, 'e2e-node-1');
    let acked = 0;
    try {
      await waitFor(() => node.received.some((m) => m.kind === 'health' && m.health?.full === true), { message: 'the full health update after Hello' });
      const config = { pools: { web: pool('web') }, routes: { site: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } } };
      const write = await api('PUT', `${a.url}/v1/config`, config, { 'x-change-message': 'through A' });
      expect(write.status).toBe(200);
      const v = write.body.version as number;

      await waitFor(async () => (await version(b)) === v, { message: 'B to serve the version written through A' });
      const onB = await api('GET', `${b.url}/v1/config`);
      expect(onB.headers.etag).toBe(`"${v}"`);
      expect(onB.body.config).toEqual(write.body.config);

      const snapshot = await waitFor(() => node.snapshot(v), { message: `the node on B to receive version ${v}` });
      expect(JSON.parse(snapshot.configJson)).toEqual(write.body.config);

      // The node record lives in etcd: A lists a node whose stream B holds, with what it ACKed.
      acked = v;
      const seen = await waitFor(async () => (await nodesOf(a)).find((n) => n.id === 'e2e-node-1' && n.configVersion === v), {
        message: 'A to list the node with its ACK',
      });
      expect(seen).toMatchObject({ replica: 'cp-b', zone: 'e2e', address: '127.0.0.1:1', lastNack: null });

      node.refuse(v + 1, 'refused by the test');
      const next = await api('PATCH', `${a.url}/v1/pools/web/backends/b1`, { weight: 7 });
      expect(next.status).toBe(200);
      expect(next.body.version).toBe(v + 1);
      await waitFor(() => node.snapshot(next.body.version), { message: 'the next version on the node' });
      const nacked = await waitFor(async () => (await nodesOf(a)).find((n) => n.id === 'e2e-node-1' && n.lastNack !== null), { message: 'A to show the NACK' });
      expect(nacked.lastNack).toMatchObject({ version: next.body.version, error: 'refused by the test' });
      expect(nacked.configVersion).toBe(v);
      // Pushes on one stream only move forward (a refused delta is followed by the full snapshot of the same version).
      const pushed = node.configVersions();
      expect(pushed).toEqual([...pushed].sort((x, y) => x - y));
    } finally {
      node.close();
    }
    // A node whose stream ended stays listed, as disconnected, with what it last acked.
    const gone = await waitFor(async () => (await nodesOf(a)).find((n) => n.id === 'e2e-node-1' && n.status === 'disconnected'), {
      message: 'the node to show as disconnected once its stream ended',
    });
    expect(gone.lastSeenAt).not.toBeNull();
    expect(gone.configVersion).toBe(acked);
  });

  it('two writes racing with the same If-Match through different replicas: exactly one wins, one version is added', async () => {
    for (let round = 0; round < 5; round++) {
      const current = await version(a);
      const [viaA, viaB] = await Promise.all([
        api('PUT', `${a.url}/v1/pools/race-a-${round}`, pool('a'), { 'if-match': `"${current}"` }),
        api('PUT', `${b.url}/v1/pools/race-b-${round}`, pool('b'), { 'if-match': `"${current}"` }),
      ]);
      expect([viaA.status, viaB.status].sort(), `round ${round}`).toEqual([200, 412]);
      const loser = viaA.status === 412 ? viaA : viaB;
      expect(loser.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(loser.body.code).toBe('LB_CP_STALE_VERSION');
      const history = await api('GET', `${a.url}/v1/versions?limit=2`);
      expect(history.body.versions.map((h: { version: number }) => h.version)).toEqual([current + 1, current]);
      const pools = Object.keys((await api('GET', `${a.url}/v1/pools`)).body.pools);
      expect(pools.filter((p) => p.endsWith(`-${round}`))).toHaveLength(1);
    }
  });

  it('racing writes without If-Match are both applied, one after the other', async () => {
    const current = await version(a);
    const results = await Promise.all([api('PUT', `${a.url}/v1/pools/both-a`, pool('a')), api('PUT', `${b.url}/v1/pools/both-b`, pool('b'))]);
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(results.map((r) => r.body.version).sort()).toEqual([current + 1, current + 2]);
    const pools = (await api('GET', `${b.url}/v1/pools`)).body.pools;
    expect(pools).toHaveProperty('both-a');
    expect(pools).toHaveProperty('both-b');
  });
});

describe('etcd outages and restarts', () => {
  it('answers 503 problem+json within seconds while etcd is down, and recovers when it is back', async () => {
    const node = new TestNode(b.grpcAddress, 'e2e-node-2');
    try {
      await waitFor(() => node.received.length > 0, { message: 'the node to be connected' });
      await etcd.kill();
      // A blip is not a reason for every replica's load balancer to pull it at once.
      expect((await api('GET', `${a.url}/readyz`)).status).toBe(200);
      const started = Date.now();
      const write = await api('PUT', `${a.url}/v1/pools/during-outage`, pool('x'));
      const elapsed = Date.now() - started;
      expect(write.status).toBe(503);
      expect(write.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(write.body.code).toBe('LB_CP_STORE_UNAVAILABLE');
      expect(elapsed).toBeLessThan(6_000);
      expect((await api('GET', `${b.url}/v1/config`)).status).toBe(503);
      // Gone for longer than --etcd-grace-seconds: not ready.
      await waitFor(async () => (await api('GET', `${a.url}/readyz`)).status === 503, { timeoutMs: 8_000, message: 'A to turn unready' });
      expect((await api('GET', `${a.url}/healthz`)).status).toBe(200);
      // Counted where operators look.
      const metrics = (await api<string>('GET', `${a.url}/metrics`)).body;
      const errors = metrics
        .split('\n')
        .filter((l) => l.startsWith('lb_cp_etcd_errors_total{'))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      expect(errors).toBeGreaterThan(0);

      await etcd.restart();
      await waitFor(async () => (await api('GET', `${a.url}/readyz`)).status === 200, { timeoutMs: 20_000, message: 'A ready again' });
      const after = await waitFor(
        async () => {
          const res = await api('PUT', `${a.url}/v1/pools/after-outage`, pool('y'));
          return res.status === 200 ? res : undefined;
        },
        { timeoutMs: 20_000, message: 'a write to succeed after etcd is back' },
      );
      // B's watch (or its periodic re-read) caught up after the outage and pushed the new version.
      await waitFor(() => node.snapshot(after.body.version), { timeoutMs: 20_000, message: 'the node on B to receive the version written after the outage' });
      expect((await api('GET', `${a.url}/v1/pools/during-outage`)).status).toBe(404);
    } finally {
      node.close();
    }
  });

  it('a replica restarted with SIGTERM exits 0 and serves the same config and history from etcd', async () => {
    const before = await api('GET', `${a.url}/v1/config`);
    const history = await api('GET', `${a.url}/v1/versions?limit=500`);
    expect(await a.stop()).toBe(0);
    await a.restart();
    const after = await api('GET', `${a.url}/v1/config`);
    expect(after.body).toEqual(before.body);
    expect(after.headers.etag).toBe(before.headers.etag);
    expect((await api('GET', `${a.url}/v1/versions?limit=500`)).body).toEqual(history.body);
    // And it pushes that version to a node that connects to it now.
    const node = new TestNode(a.grpcAddress, 'e2e-node-3');
    try {
      await waitFor(() => node.snapshot(before.body.version), { message: 'the restarted replica to push the current version' });
    } finally {
      node.close();
    }
  });

  it('a bad flag prints usage and exits 2', async () => {
    const child = new Child('bad-flags', process.execPath, [CP_MAIN, '--etcd', etcd.url, '--http-listen', 'not-an-address']);
    expect(await child.exited).toBe(2);
    expect(child.logs()).toMatch(/--http-listen/);
    expect(child.logs()).toMatch(/usage: lb-control-plane/);
  });
});
