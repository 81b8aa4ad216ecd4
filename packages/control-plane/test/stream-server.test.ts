import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, loadDiscovery, type ControlMessage, type NodeMessage } from '@lb/shared';
import { CpMetrics } from '../src/metrics.js';
import { ConfigFeed } from '../src/push/config-feed.js';
import { NoHealthSource, type HealthDelta, type HealthSource, type HealthState } from '../src/push/health-source.js';
import { MergedConfigSource } from '../src/push/merged-config.js';
import { NodeRegistry } from '../src/push/node-registry.js';
import { StreamServer, type StreamServerOptions } from '../src/push/stream-server.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';
import { MemoryRegistrationStore } from '../src/store/registration-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');

/** A data plane as the stream server sees it: a real gRPC client that records what it receives. */
class FakeNode {
  readonly received: ControlMessage[] = [];
  status: grpc.StatusObject | undefined;
  readonly call: grpc.ClientDuplexStream<NodeMessage, ControlMessage>;

  /** ACK every config push as it arrives, as a data plane that applies everything would. */
  autoAck = false;

  constructor(client: grpc.Client) {
    this.call = (client as unknown as { Stream(): grpc.ClientDuplexStream<NodeMessage, ControlMessage> }).Stream();
    this.call.on('data', (m: ControlMessage) => {
      this.received.push(m);
      if (this.autoAck && m.config) this.ack(m.config);
    });
    this.call.on('status', (s: grpc.StatusObject) => (this.status = s));
    this.call.on('error', () => undefined);
  }

  hello(nodeId: string, cachedVersion = 0, cachedHistoryId = '', cachedDigest = ''): void {
    this.call.write({ hello: { nodeId, zone: 'z1', cachedVersion, address: '10.9.0.1:8080', cachedHealthRevision: 0, cachedHistoryId, cachedDigest } });
  }

  ack(config: NonNullable<ControlMessage['config']>): void {
    this.call.write({ ack: { nonce: config.nonce, version: config.version, kind: 'PUSH_KIND_CONFIG' } });
  }

  nack(config: NonNullable<ControlMessage['config']>, error: string): void {
    this.call.write({ nack: { nonce: config.nonce, version: config.version, error, kind: 'PUSH_KIND_CONFIG' } });
  }

  configs(): Array<NonNullable<ControlMessage['config']>> {
    return this.received.filter((m) => m.kind === 'config').map((m) => m.config!);
  }
}

let store: MemoryConfigStore;
let nodes: MemoryNodeStore;
let metrics: CpMetrics;
let feed: ConfigFeed;
let views: MergedConfigSource;
let server: StreamServer;
let client: grpc.Client;
const open: FakeNode[] = [];

function commit(pools: string[]): number {
  const config = { pools: Object.fromEntries(pools.map((p) => [p, { algorithm: 'round_robin' as const, backends: [] }])), routes: {} };
  return store.forceCommit({ createdAt: new Date().toISOString(), author: 't', message: 'm', config });
}

async function startServer(options: Partial<StreamServerOptions> = {}): Promise<void> {
  const registry = new NodeRegistry({ store: nodes, replica: 'replica-a', logger, metrics, flushIntervalMs: 20 });
  metrics.nodeVersions = () => registry.versions();
  server = new StreamServer({
    config: views,
    health: new NoHealthSource(),
    registry,
    logger,
    metrics,
    helloTimeoutMs: 300,
    versionSeen: (seen) => feed.noticeVersion(seen),
    ...options,
  });
  const port = await server.listen('127.0.0.1', 0);
  const { Client } = loadDiscovery();
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
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
  await startServer({ health });
  return listeners;
}

/** `pools` committed, the feed started, and node dp-1 connected with its first snapshot. */
async function connectedNode(pools = ['web']): Promise<FakeNode> {
  commit(pools);
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
  views = new MergedConfigSource({ config: feed, registrations: new MemoryRegistrationStore(), logger });
  views.start();
  await startServer();
});

afterEach(async () => {
  for (const n of open.splice(0)) n.call.cancel();
  client.close();
  feed.stop();
  views.stop();
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
    // Push-to-answer time without a version label; nodes counted by the version they run.
    const ackTimes = await metrics.registry.getSingleMetricAsString('lb_cp_push_ack_seconds');
    expect(ackTimes).toContain('lb_cp_push_ack_seconds_count{kind="config",result="ack"} 1');
    expect(ackTimes).not.toContain('version=');
    expect(await metrics.registry.getSingleMetricAsString('lb_cp_nodes')).toContain('lb_cp_nodes{version="1"} 1');
  });

  it('pushes only what changed since the version the node ACKed, one push at a time', async () => {
    const dp = await connectedNode(['a']);
    const first = dp.configs()[0]!;
    expect(first).toMatchObject({ version: 1, baseVersion: 0, upserted: [], removed: [] });
    expect(first.historyId).not.toBe('');
    // Unanswered: newer versions wait, and only the newest is sent once the node answers.
    commit(['a', 'b']);
    commit(['b', 'c']);
    await waitFor('feed at 3', () => views.latest()?.version === 3);
    expect(dp.configs()).toHaveLength(1);
    dp.ack(first);
    await waitFor('the delta', () => dp.configs().length === 2);
    const delta = dp.configs()[1]!;
    expect(delta).toMatchObject({ version: 3, baseVersion: 1, configJson: '', historyId: first.historyId, digest: views.latest()!.digest });
    expect(delta.upserted.map((r) => [r.type, r.name, JSON.parse(r.json)])).toEqual([
      ['pools', 'b', { algorithm: 'round_robin', backends: [] }],
      ['pools', 'c', { algorithm: 'round_robin', backends: [] }],
    ]);
    expect(delta.removed).toEqual([{ type: 'pools', name: 'a' }]);
    dp.ack(delta);
    await waitFor('acked version', () => nodes.records.get('dp-1')?.configVersion === 3);
  });

  it('sends the full snapshot to a node that could not apply a delta, and records a refused full snapshot', async () => {
    const dp = await connectedNode(['a']);
    dp.ack(dp.configs()[0]!);
    commit(['a', 'b']);
    await waitFor('delta', () => dp.configs().length === 2);
    dp.nack(dp.configs()[1]!, 'DP_ERR_SNAPSHOT_BASE_MISMATCH: runs version 7');
    await waitFor('full snapshot', () => dp.configs().length === 3);
    const full = dp.configs()[2]!;
    expect(full.version).toBe(2);
    expect(JSON.parse(full.configJson).pools).toHaveProperty('b');
    // A delta the node could not apply is not the operator's concern; a refused full snapshot is.
    expect(nodes.records.get('dp-1')?.lastNack).toBeNull();
    dp.nack(full, 'pool b is bad');
    const record = await waitFor('nack recorded', () => nodes.records.get('dp-1')?.lastNack ?? undefined);
    expect(record).toMatchObject({ version: 2, error: 'pool b is bad' });
    expect(Number.isNaN(Date.parse(record.at))).toBe(false);
    expect(dp.configs()).toHaveLength(3);
  });

  it('encodes a push once for every node that gets it', async () => {
    commit(['a']);
    feed.start();
    await feed.ready();
    const [x, y] = [node(), node()];
    x.autoAck = true;
    y.autoAck = true;
    x.hello('dp-x');
    y.hello('dp-y');
    await waitFor('both have version 1', () => nodes.records.get('dp-x')?.configVersion === 1 && nodes.records.get('dp-y')?.configVersion === 1);
    commit(['a', 'b']);
    await waitFor('both got the delta', () => x.configs().length === 2 && y.configs().length === 2);
    // The nonce is part of the encoding: the same nonce is the same bytes.
    expect(x.configs()[0]!.nonce).toBe(y.configs()[0]!.nonce);
    expect(x.configs()[1]!.nonce).toBe(y.configs()[1]!.nonce);
  });

  it('gives a reconnecting node that runs a known view no snapshot, and one with another digest the full one', async () => {
    commit(['a']);
    feed.start();
    await feed.ready();
    const view = views.latest()!;
    const current = node();
    current.hello('dp-current', view.version, view.historyId, view.digest);
    await waitFor('health', () => current.received.length === 1);
    await waitFor('recorded as running it', () => nodes.records.get('dp-current')?.configVersion === 1);
    expect(current.configs()).toEqual([]);
    const drifted = node();
    drifted.hello('dp-drifted', view.version, view.historyId, 'another-digest');
    await waitFor('full snapshot', () => drifted.configs().length === 1);
    expect(drifted.configs()[0]!.configJson).not.toBe('');
  });

  it('recognises the view a node runs when it said Hello before this replica had read the store (a restart)', async () => {
    commit(['a']);
    // What the node runs, as the replica it was connected to before computed it.
    const otherFeed = new ConfigFeed({ store, logger });
    const otherViews = new MergedConfigSource({ config: otherFeed, registrations: new MemoryRegistrationStore(), logger });
    otherViews.start();
    otherFeed.start();
    await otherFeed.ready();
    const view = await waitFor("the other replica's view", () => otherViews.latest());
    otherFeed.stop();
    otherViews.stop();
    const [current, drifted] = [node(), node()];
    current.hello('dp-current', view.version, view.historyId, view.digest);
    drifted.hello('dp-drifted', view.version, view.historyId, 'another-digest');
    await waitFor('health', () => current.received.length === 1 && drifted.received.length === 1);
    expect(views.latest()).toBeUndefined();
    feed.start();
    await waitFor('the full snapshot for the drifted node', () => drifted.configs().length === 1);
    await waitFor('recorded as running it', () => nodes.records.get('dp-current')?.configVersion === 1);
    expect(current.configs()).toEqual([]);
  });

  it('never pushes an older version of a history than the node runs; a store that went back starts a new history', async () => {
    commit(['a']);
    commit(['a', 'b']);
    feed.start();
    await feed.ready();
    const v2 = views.latest()!;
    // etcd restored from a backup taken at version 1: the node still runs version 2.
    store.restore(1);
    const dp = node();
    dp.autoAck = true;
    dp.hello('dp-1', 2, v2.historyId, v2.digest);
    const full = await waitFor('the restored version, in a new history', () => dp.configs()[0]);
    expect(full).toMatchObject({ version: 1 });
    expect(full.historyId).not.toBe(v2.historyId);
    expect(JSON.parse(full.configJson).pools).not.toHaveProperty('b');
    expect((await store.pointer()).historyId).toBe(full.historyId);
  });

  it('admits large pushes within the byte budget, the next as soon as one is answered', async () => {
    await server.close(100);
    client.close();
    await startServer({ pushBudgetBytes: 1, pushBudgetFreeBelow: 1 });
    commit(['a']);
    feed.start();
    await feed.ready();
    const [x, y] = [node(), node()];
    x.hello('dp-x');
    await waitFor('x got its snapshot', () => x.configs().length === 1);
    y.hello('dp-y');
    await waitFor('y said hello', () => y.received.length === 1);
    expect(y.configs()).toEqual([]);
    expect(server.budget.queued).toBe(1);
    x.ack(x.configs()[0]!);
    await waitFor('y admitted', () => y.configs().length === 1);
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
    fresh.autoAck = true;
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

  it('sends no health until this replica has read it, then the whole state: a node keeps what it holds meanwhile', async () => {
    // A control plane that has just started (or cannot reach etcd yet) knows no health. Sending
    // that as a full update would wipe what the node holds, and every backend it held unhealthy
    // would take traffic again until the first list.
    let known: HealthState | undefined;
    const listeners = await restartWithDrivenHealth(() => known);
    const dp = await connectedNode();
    dp.ack(dp.configs()[0]!);
    await waitFor('the snapshot acked', () => nodes.records.get('dp-1')?.configVersion === 1);
    expect(dp.received.filter((m) => m.kind === 'health')).toEqual([]);
    const down = { pool: 'web', backendId: 'b1', status: 'unhealthy', sinceUnixMs: 1 };
    const up = { pool: 'web', backendId: 'b2', status: 'healthy', sinceUnixMs: 1 };
    known = { revision: 7, backends: [down, up] };
    for (const l of listeners) l({ revision: 7, full: false, backends: [down] });
    const first = await waitFor('the first health push', () => dp.received.find((m) => m.kind === 'health'));
    expect(first.health).toMatchObject({ full: true, revision: 7 });
    expect(first.health!.backends.map((b) => b.backendId).sort()).toEqual(['b1', 'b2']);
    // From then on, deltas.
    for (const l of listeners) l({ revision: 8, full: false, backends: [{ ...up, status: 'unhealthy' }] });
    const second = await waitFor('the next health push', () => dp.received.filter((m) => m.kind === 'health')[1]);
    expect(second.health).toMatchObject({ full: false, revision: 8 });
  });

  it('sends a node that stops reading one delta to the newest config and one full health update', async () => {
    let revision = 0;
    const listeners = await restartWithDrivenHealth(() => ({ revision, backends: [] }));
    const dp = await connectedNode();
    dp.autoAck = true;
    dp.ack(dp.configs()[0]!);
    await waitFor('acked', () => nodes.records.get('dp-1')?.configVersion === 1);
    // The node stops reading; 60 versions of about 60 KB each and 240 health changes of about 10 KB go by.
    dp.call.pause();
    const big = (v: number) => Array.from({ length: 300 }, (_, i) => `pool-${v}-${i}-${'x'.repeat(160)}`);
    const zone = (r: number) => Array.from({ length: 200 }, (_, i) => ({ pool: 'web', backendId: `b${r}-${i}`, status: 'unhealthy', sinceUnixMs: r }));
    let last = 0;
    for (let v = 0; v < 60; v++) {
      last = commit(big(v));
      await waitFor('feed', () => feed.latest()?.version === last);
      for (let i = 0; i < 4; i++) for (const l of listeners) l({ revision: ++revision, full: false, backends: zone(revision) });
    }
    dp.call.resume();
    await waitFor('the newest version', () => dp.configs().at(-1)?.version === last, 10_000);
    // Health names backends by pool and id, so it may come before or after the config naming them.
    await waitFor('a full health update at the newest revision', () =>
      dp.received.some((m) => m.kind === 'health' && m.health?.full === true && Number(m.health.revision) === revision),
    );
    const versions = dp.configs().map((c) => Number(c.version));
    // Far fewer than the 61 versions, in order, ending with the newest.
    expect(versions.length).toBeLessThan(5);
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
