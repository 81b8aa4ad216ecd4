/** EtcdNodeStore against a real etcd: only the replica holding a node's stream changes its record. */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@lb/shared';
import { EtcdServer } from '../../../test/support/etcd.js';
import type { NodeRecord } from '../src/store/config-store.js';
import { EtcdNodeStore } from '../src/store/etcd-node-store.js';

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

// A real etcd (installed by deploy/bootstrap.sh, like every test that needs one): ownership is a
// property of etcd transactions and leases, which an in-memory store cannot prove.
describe('EtcdNodeStore ownership', () => {
  let etcd: EtcdServer;
  let url: string;
  const clients: Etcd3[] = [];

  beforeAll(async () => {
    etcd = await EtcdServer.start();
    url = etcd.url;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  function replica(): EtcdNodeStore {
    const client = new Etcd3({ hosts: url });
    clients.push(client);
    return new EtcdNodeStore({ client, prefix: '/lb-unit', logger, ttlSeconds: 30 });
  }

  it("a replica that lost the stream neither overwrites nor deletes the new owner's record", async () => {
    const a = replica();
    const b = replica();
    expect(await a.put(record('dp-1', 'replica-a'), { claim: true })).toBe(true);
    // The node moves to replica B, which takes the record over.
    expect(await b.put(record('dp-1', 'replica-b'), { claim: true })).toBe(true);
    // A late ACK on A's dead stream must not write A's view back.
    expect(await a.put(record('dp-1', 'replica-a', 7))).toBe(false);
    await a.remove('dp-1');
    expect(await a.list()).toEqual([record('dp-1', 'replica-b')]);
    // The owner keeps updating its own record.
    expect(await b.put(record('dp-1', 'replica-b', 3))).toBe(true);
    expect((await a.list())[0]).toMatchObject({ replica: 'replica-b', configVersion: 3 });
    await a.close();
    await b.close();
    expect(await replica().list()).toEqual([]);
  });

  it("a claim from a stream older than the owner's is refused; a newer one takes the record", async () => {
    const a = replica();
    const b = replica();
    // The node connected to A at t=1000, but A could not write (etcd was down); it reconnected to
    // B at t=2000, which wrote. A's first write, retried now, must not take the record back.
    expect(await b.put(record('dp-3', 'replica-b', 0, 2000), { claim: true })).toBe(true);
    expect(await a.put(record('dp-3', 'replica-a', 0, 1000), { claim: true })).toBe(false);
    expect((await a.list()).find((r) => r.id === 'dp-3')).toMatchObject({ replica: 'replica-b' });
    // A stream that opened on A after B's does take it over.
    expect(await a.put(record('dp-3', 'replica-a', 0, 3000), { claim: true })).toBe(true);
    expect((await b.list()).find((r) => r.id === 'dp-3')).toMatchObject({ replica: 'replica-a' });
    await a.close();
    await b.close();
  });

  it('writes a record nobody owns (it expired with a lost lease)', async () => {
    const a = replica();
    expect(await a.put(record('dp-2', 'replica-a', 1))).toBe(true);
    expect(await a.put(record('dp-2', 'replica-a', 2))).toBe(true);
    expect((await a.list())[0]).toMatchObject({ configVersion: 2 });
    await a.close();
  });
});
