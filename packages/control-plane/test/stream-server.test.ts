import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, loadDiscovery, type ControlMessage, type NodeMessage } from '@lb/shared';
import { CpMetrics } from '../src/metrics.js';
import { ConfigFeed } from '../src/push/config-feed.js';
import { NoHealthSource, type HealthDelta, type HealthSource } from '../src/push/health-source.js';
import { NodeRegistry } from '../src/push/node-registry.js';
import { StreamServer } from '../src/push/stream-server.js';
import { MemoryConfigStore, MemoryNodeStore } from '../src/store/memory-config-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');

/** A data plane as the stream server sees it: a real gRPC client that records what it receives. */
class FakeNode {
  readonly received: ControlMessage[] = [];
  status: grpc.StatusObject | undefined;
  readonly call: grpc.ClientDuplexStream<NodeMessage, ControlMessage>;

  constructor(client: grpc.Client) {
    this.call = (client as unknown as { Stream(): grpc.ClientDuplexStream<NodeMessage, ControlMessage> }).Stream();
    this.call.on('data', (m: ControlMessage) => this.received.push(m));
    this.call.on('status', (s: grpc.StatusObject) => (this.status = s));
    this.call.on('error', () => undefined);
  }

  hello(nodeId: string, cachedVersion = 0): void {
    this.call.write({ hello: { nodeId, zone: 'z1', cachedVersion, address: '10.9.0.1:8080', cachedHealthRevision: 0, cachedHistoryId: '', cachedDigest: '' } });
  }

  configs(): Array<NonNullable<ControlMessage['config']>> {
    return this.received.filter((m) => m.kind === 'config').map((m) => m.config!);
  }
}

let store: MemoryConfigStore;
let nodes: MemoryNodeStore;
let metrics: CpMetrics;
let feed: ConfigFeed;
let server: StreamServer;
let client: grpc.Client;
const open: FakeNode[] = [];

function commit(pools: string[]): number {
  const config = { pools: Object.fromEntries(pools.map((p) => [p, { algorithm: 'round_robin' as const, backends: [] }])), routes: {} };
  return store.forceCommit({ createdAt: new Date().toISOString(), author: 't', message: 'm', config });
}

function node(): FakeNode {
  const n = new FakeNode(client);
  open.push(n);
  return n;
}

/** Restarts the stream server on a health source the test drives; returns its subscribers. */
async function restartWithDrivenHealth(full: HealthSource['full']): Promise<Set<(delta: HealthDelta) => void>> {
  const listeners = new Set<(delta: HealthDelta) => void>();
  const health: HealthSource = { full, subscribe: (l) => (listeners.add(l), () => listeners.delete(l)) };
  await server.close(100);
  client.close();
  const registry = new NodeRegistry({ store: nodes, replica: 'replica-a', logger, metrics, retryDelayMs: 20 });
  server = new StreamServer({ config: feed, health, registry, logger, metrics, helloTimeoutMs: 300 });
  const port = await server.listen('127.0.0.1', 0);
  const { Client } = loadDiscovery();
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return listeners;
}

/** One pool committed, the feed started, and node dp-1 connected with its first snapshot. */
async function connectedNode(): Promise<FakeNode> {
  commit(['web']);
  feed.start();
  await feed.ready();
  const dp = node();
  dp.hello('dp-1');
  await waitFor('snapshot', () => dp.configs().length === 1);
  return dp;
}

beforeEach(async () => {
  store = new MemoryConfigStore();
  nodes = new MemoryNodeStore('replica-a');
  metrics = new CpMetrics();
  feed = new ConfigFeed({ store, logger, metrics, retryDelayMs: 20 });
  const registry = new NodeRegistry({ store: nodes, replica: 'replica-a', logger, metrics, retryDelayMs: 20 });
  server = new StreamServer({ config: feed, health: new NoHealthSource(), registry, logger, metrics, helloTimeoutMs: 300 });
  const port = await server.listen('127.0.0.1', 0);
  const { Client } = loadDiscovery();
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterEach(async () => {
  for (const n of open.splice(0)) n.call.cancel();
  client.close();
  feed.stop();
  await server.close(500);
});

describe('ConfigDiscovery.Stream', () => {
  it('answers Hello with the current snapshot and a full health update, and records the ACK', async () => {
    commit(['web']);
    feed.start();
    await feed.ready();
    const dp = node();
    dp.hello('dp-1');
    await waitFor('snapshot and health', () => dp.received.length >= 2);
    const health = dp.received.find((m) => m.kind === 'health')!.health!;
    expect(health).toMatchObject({ revision: 0, full: true, backends: [] });
    expect(health.nonce).not.toBe('');
    const [snapshot] = dp.configs();
    expect(snapshot!.version).toBe(1);
    expect(JSON.parse(snapshot!.configJson)).toEqual({ pools: { web: { algorithm: 'round_robin', backends: [] } }, routes: {} });
    expect(snapshot!.nonce).toMatch(/^[0-9a-f-]{36}$/);

    const record = await waitFor('node record', () => nodes.records.get('dp-1'));
    expect(record).toMatchObject({
      id: 'dp-1',
      address: '10.9.0.1:8080',
      zone: 'z1',
      configVersion: 0,
      healthRevision: 0,
      lastNack: null,
      replica: 'replica-a',
    });
    dp.call.write({ ack: { nonce: snapshot!.nonce, version: 1, kind: 'PUSH_KIND_CONFIG' } });
    await waitFor('acked version', () => nodes.records.get('dp-1')?.configVersion === 1);
    expect(await metrics.registry.getSingleMetricAsString('lb_cp_pushes_total')).toContain('lb_cp_pushes_total{kind="config",result="ack"} 1');
    expect(await metrics.registry.getSingleMetricAsString('lb_cp_connected_nodes')).toContain('lb_cp_connected_nodes 1');
  });

  it('pushes each new version in order and records a NACK', async () => {
    commit(['a']);
    feed.start();
    await feed.ready();
    const dp = node();
    dp.hello('dp-1');
    await waitFor('first snapshot', () => dp.configs().length === 1);
    commit(['a', 'b']);
    commit(['a', 'b', 'c']);
    await waitFor('later snapshots', () => dp.configs().at(-1)?.version === 3);
    const versions = dp.configs().map((c) => c.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
    const last = dp.configs().at(-1)!;
    dp.call.write({ nack: { nonce: last.nonce, version: 3, error: 'pool c is bad', kind: 'PUSH_KIND_CONFIG' } });
    const record = await waitFor('nack recorded', () => nodes.records.get('dp-1')?.lastNack ?? undefined);
    expect(record).toMatchObject({ version: 3, error: 'pool c is bad' });
    expect(Number.isNaN(Date.parse(record.at))).toBe(false);
  });

  it('waits for the store when it is down at start, then pushes', async () => {
    store.unavailable = true;
    commit(['web']);
    feed.start();
    const dp = node();
    dp.hello('dp-1');
    await waitFor('health only', () => dp.received.length === 1);
    expect(dp.configs()).toEqual([]);
    store.unavailable = false;
    await waitFor('snapshot after recovery', () => dp.configs().length === 1);
    expect(dp.configs()[0]!.version).toBe(1);
  });

  it('sends the empty version 0 to a node with nothing, but not to a node running a cached version', async () => {
    feed.start();
    await feed.ready();
    const fresh = node();
    fresh.hello('dp-fresh', 0);
    await waitFor('version 0 and health', () => fresh.received.length === 2);
    expect(fresh.configs().map((c) => [c.version, JSON.parse(c.configJson)])).toEqual([[0, { pools: {}, routes: {} }]]);
    const cached = node();
    cached.hello('dp-cached', 7);
    await waitFor('health', () => cached.received.length === 1);
    expect(cached.received[0]!.kind).toBe('health');
    commit(['web']);
    await waitFor('first real version on both', () => cached.configs().length === 1 && fresh.configs().length === 2);
    expect(cached.configs()[0]!.version).toBe(1);
    expect(fresh.configs()[1]!.version).toBe(1);
  });

  it('ends a stream whose first message is not Hello', async () => {
    feed.start();
    const dp = node();
    dp.call.write({ ack: { nonce: 'x', version: 1, kind: 'PUSH_KIND_CONFIG' } });
    const status = await waitFor('status', () => dp.status);
    expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(status.details).toMatch(/first message must be Hello/);
  });

  it('ends a stream that never says Hello, and one with a bad node id', async () => {
    feed.start();
    const silent = node();
    const status = await waitFor('hello timeout', () => silent.status);
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    const bad = node();
    bad.hello('bad id with spaces');
    expect((await waitFor('bad id', () => bad.status)).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('removes the node record when its stream ends', async () => {
    feed.start();
    const dp = node();
    dp.hello('dp-1');
    await waitFor('record', () => nodes.records.get('dp-1'));
    dp.call.end();
    await waitFor('record removed', () => !nodes.records.has('dp-1'));
    await waitFor('gauge back to 0', async () => (await metrics.registry.getSingleMetricAsString('lb_cp_connected_nodes')).includes('lb_cp_connected_nodes 0'));
  });

  it('a newer stream for the same node id replaces the older one and keeps the record', async () => {
    feed.start();
    const first = node();
    first.hello('dp-1');
    await waitFor('record', () => nodes.records.get('dp-1'));
    const second = node();
    second.hello('dp-1');
    const status = await waitFor('old stream ended', () => first.status);
    expect(status.code).toBe(grpc.status.ALREADY_EXISTS);
    await waitFor('health on the new stream', () => second.received.length >= 1);
    expect(second.status).toBeUndefined();
    expect(nodes.records.has('dp-1')).toBe(true);
  });

  it('writes the node records again after the store lost them', async () => {
    feed.start();
    const dp = node();
    dp.hello('dp-1');
    await waitFor('record', () => nodes.records.get('dp-1'));
    nodes.loseRecords();
    expect(nodes.records.has('dp-1')).toBe(false);
    await waitFor('record written again', () => nodes.records.get('dp-1'));
  });

  it('records a config ACK that comes back after many health pushes went out', async () => {
    // Health that changes a lot (a zone going down: one delta per backend) while a config push is
    // still unanswered.
    const listeners = await restartWithDrivenHealth(() => ({ revision: 0, backends: [] }));
    const dp = await connectedNode();
    // In tens, each delivered before the next, so that none is folded into a full update (a
    // stream that backs up sends only that; see the next test).
    for (let i = 1; i <= 100; i++) {
      for (const l of listeners) l({ revision: i, full: false, backends: [{ pool: 'web', backendId: `b${i}`, status: 'unhealthy', sinceUnixMs: i }] });
      if (i % 10 === 0) await waitFor('health pushes', () => dp.received.filter((m) => m.kind === 'health').length === i + 1);
    }
    const snapshot = dp.configs()[0]!;
    dp.call.write({ ack: { nonce: snapshot.nonce, version: 1, kind: 'PUSH_KIND_CONFIG' } });
    await waitFor('acked version', () => nodes.records.get('dp-1')?.configVersion === 1);
  });

  it('keeps only the newest config and a full health update for a node that stops reading', async () => {
    let revision = 0;
    const listeners = await restartWithDrivenHealth(() => ({ revision, backends: [] }));
    const dp = await connectedNode();
    // The node stops reading; 60 versions of about 60 KB each and 200 health changes go by.
    dp.call.pause();
    const big = (v: number) => Array.from({ length: 300 }, (_, i) => `pool-${v}-${i}-${'x'.repeat(160)}`);
    let last = 0;
    for (let v = 0; v < 60; v++) {
      last = commit(big(v));
      await waitFor('feed', () => feed.latest()?.version === last);
      for (let i = 0; i < 4; i++)
        for (const l of listeners)
          l({ revision: ++revision, full: false, backends: [{ pool: 'web', backendId: `b${revision}`, status: 'unhealthy', sinceUnixMs: revision }] });
    }
    dp.call.resume();
    await waitFor('the newest version', () => dp.configs().at(-1)?.version === last, 10_000);
    await waitFor('a full health update after it', () => {
      const lastConfig = dp.received.findLastIndex((m) => m.kind === 'config');
      return dp.received.slice(lastConfig).some((m) => m.kind === 'health' && m.health?.full === true && Number(m.health.revision) === revision);
    });
    const versions = dp.configs().map((c) => Number(c.version));
    // Far fewer than the 61 versions, in order, ending with the newest.
    expect(versions.length).toBeLessThan(40);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(dp.received.filter((m) => m.kind === 'health').length).toBeLessThan(100);
  });

  it('ends every stream on close', async () => {
    feed.start();
    const dp = node();
    dp.hello('dp-1');
    await waitFor('connected', () => dp.received.length >= 1);
    await server.close(500);
    const status = await waitFor('status', () => dp.status);
    expect(status.code).toBe(grpc.status.OK);
  });
});

describe('NodeRegistry ownership', () => {
  it('does not overwrite a record that another replica took over after the stream opened here', async () => {
    const store = new MemoryNodeStore('replica-a');
    const registry = new NodeRegistry({ store, replica: 'replica-a', logger, retryDelayMs: 10 });
    const handle = registry.connect({ id: 'dp-1', address: '10.0.0.1:80', zone: 'a' }, () => {});
    await waitFor('first write', () => store.records.get('dp-1'));
    // The node moved to replica B; this replica has not noticed yet that its stream is dead.
    store.records.set('dp-1', { ...store.records.get('dp-1')!, replica: 'replica-b', configVersion: 9 });
    handle.acked('config', 4);
    store.loseRecords(); // our lease lapsed: the registry writes its records again
    await new Promise((r) => setTimeout(r, 50));
    expect(store.records.get('dp-1')).toMatchObject({ replica: 'replica-b', configVersion: 9 });
    handle.disconnect();
    await new Promise((r) => setTimeout(r, 20));
    expect(store.records.get('dp-1')).toMatchObject({ replica: 'replica-b' });
    registry.stop();
  });

  it('a new stream takes the record over from the replica that held it before', async () => {
    const store = new MemoryNodeStore('replica-a');
    store.records.set('dp-1', {
      id: 'dp-1',
      address: 'x:1',
      zone: 'a',
      connectedAt: new Date(0).toISOString(),
      configVersion: 9,
      healthRevision: 0,
      lastNack: null,
      replica: 'replica-b',
    });
    const registry = new NodeRegistry({ store, replica: 'replica-a', logger, retryDelayMs: 10 });
    const handle = registry.connect({ id: 'dp-1', address: '10.0.0.1:80', zone: 'a' }, () => {});
    await waitFor('claim', () => store.records.get('dp-1')?.replica === 'replica-a');
    handle.acked('config', 4);
    await waitFor('ack recorded', () => store.records.get('dp-1')?.configVersion === 4);
    registry.stop();
  });
});
