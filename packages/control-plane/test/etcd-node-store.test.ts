/**
 * EtcdNodeStore against a real etcd: every replica publishes its nodes in shards on its lease and
 * lists every replica's from a watched copy; nodes outlive their streams as last known records.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@lb/shared';
import { EtcdServer } from '../../../test/support/etcd.js';
import { createEtcdClient } from '../src/store/etcd-client.js';
import { EtcdNodeStore } from '../src/store/etcd-node-store.js';
import { shardOf, type NodeRecord } from '../src/store/node-store.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');

function record(id: string, replica: string, configVersion = 0, connectedAtMs = 0): NodeRecord {
  return {
    id,
    address: '10.0.0.1:80',
    zone: 'a',
    connectedAt: new Date(connectedAtMs).toISOString(),
    configVersion,
    healthRevision: 0,
    lastNack: null,
    replica,
  };
}

function shards(...records: NodeRecord[]): Map<number, NodeRecord[]> {
  const out = new Map<number, NodeRecord[]>();
  for (const r of records) out.set(shardOf(r.id), [...(out.get(shardOf(r.id)) ?? []), r]);
  return out;
}

describe('EtcdNodeStore', () => {
  let etcd: EtcdServer;
  const clients: Etcd3[] = [];
  const stores: EtcdNodeStore[] = [];

  beforeAll(async () => {
    etcd = await EtcdServer.start();
  });

  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  function replica(prefix: string, name: string, now?: () => Date): EtcdNodeStore {
    const client = createEtcdClient({ hosts: [etcd.url] });
    clients.push(client);
    const store = new EtcdNodeStore({ client, prefix, replica: name, logger, ttlSeconds: 30, ...(now ? { now } : {}) });
    stores.push(store);
    return store;
  }

  it("lists every replica's nodes from its watched copy; a node on two replicas is where its latest stream is", async () => {
    const a = replica('/n1', 'replica-a');
    const b = replica('/n1', 'replica-b');
    expect(await b.known()).toEqual([]);
    await a.publish(shards(record('dp-1', 'replica-a', 3, 1_000), record('dp-2', 'replica-a', 3, 1_000)));
    await waitFor('B to see A’s nodes', async () => (await b.known()).length === 2);
    // dp-1 moved to B (a later stream); A has not noticed yet.
    await b.publish(shards(record('dp-1', 'replica-b', 4, 2_000)));
    await waitFor('A to see dp-1 on B', async () => (await a.known()).find((n) => n.id === 'dp-1')?.replica === 'replica-b');
    expect((await b.known()).map((n) => [n.id, n.replica, n.configVersion, n.status])).toEqual([
      ['dp-1', 'replica-b', 4, 'connected'],
      ['dp-2', 'replica-a', 3, 'connected'],
    ]);
    // A's late view of dp-1 is not recorded as its last known one: B's stream is later.
    await a.markSeen([record('dp-1', 'replica-a', 3, 1_000)]);
    expect(await new Etcd3({ hosts: etcd.url }).get('/n1/seen-nodes/dp-1').string()).toBeNull();
    await a.publish(new Map([[shardOf('dp-1'), shardOf('dp-1') === shardOf('dp-2') ? [record('dp-2', 'replica-a', 3, 1_000)] : []]]));
    await b.publish(new Map([[shardOf('dp-1'), []]]));
    await b.markSeen([record('dp-1', 'replica-b', 4, 2_000)]);
    await waitFor('A to list dp-1 as disconnected with what it ran', async () => {
      const view = (await a.known()).find((n) => n.id === 'dp-1');
      return view?.status === 'disconnected' && view.configVersion === 4;
    });
  });

  it('answers from its copy while etcd is away, and a closed replica leaves its nodes as last seen', async () => {
    let now = new Date('2027-01-01T00:00:00Z');
    const a = replica('/n2', 'replica-a', () => now);
    await a.publish(shards(record('dp-1', 'replica-a', 7)));
    await a.markSeen([record('dp-1', 'replica-a', 7)]);
    expect(await a.known()).toHaveLength(1);
    await etcd.kill();
    try {
      expect((await a.known()).map((n) => [n.id, n.status])).toEqual([['dp-1', 'connected']]);
      await expect(a.publish(shards(record('dp-1', 'replica-a', 8)))).rejects.toThrow(/etcd/);
    } finally {
      await etcd.restart();
    }
    now = new Date('2027-01-01T00:05:00Z');
    await a.close();
    const b = replica('/n2', 'replica-b');
    expect(await b.known()).toEqual([
      expect.objectContaining({ id: 'dp-1', status: 'disconnected', configVersion: 7, lastSeenAt: '2027-01-01T00:05:00.000Z' }),
    ]);
    expect(await b.forget('dp-1')).toBe('forgotten');
    expect(await b.forget('dp-1')).toBe('unknown');
  });

  it('forgets disconnected nodes last seen before a time, never connected ones', async () => {
    let now = new Date('2027-01-01T00:00:00Z');
    const a = replica('/n3', 'replica-a', () => now);
    await a.markSeen([record('old', 'replica-a'), record('live', 'replica-a')]);
    await a.publish(shards(record('live', 'replica-a')));
    now = new Date('2027-01-02T00:00:00Z');
    await a.markSeen([record('new', 'replica-a')]);
    expect(await a.forget('live')).toBe('connected');
    expect(await a.forgetDisconnected(new Date('2027-01-01T12:00:00Z'))).toEqual(['old']);
    expect((await a.known()).map((n) => n.id)).toEqual(['live', 'new']);
  });
});
