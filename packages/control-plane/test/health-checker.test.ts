import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { HealthCheck, VersionedConfig } from '@lb/shared';
import { HealthChecker, probeTargets } from '../src/health/health-checker.js';
import { HealthFeed } from '../src/health/health-feed.js';
import { initialRecord, nextRecord } from '../src/health/health-record.js';
import { MemoryHealthStore } from '../src/health/health-store.js';
import { httpProbe } from '../src/health/http-probe.js';
import { StaticLeadership } from '../src/health/leader-election.js';
import { decodeServingStatus } from '../src/health/grpc-probe.js';
import type { Probe, ProbeResult } from '../src/health/probe.js';
import { tcpProbe } from '../src/health/tcp-probe.js';
import type { ConfigSource } from '../src/push/config-feed.js';
import type { HealthDelta } from '../src/push/health-source.js';
import { waitFor } from './helpers.js';

const logger = pino({ level: 'silent' });
const CHECK: HealthCheck = {
  type: 'http',
  path: '/health',
  intervalMs: 100,
  timeoutMs: 50,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  expectedStatuses: [200],
};
const probe = (ok: boolean) => ({ at: new Date().toISOString(), ok, latencyMs: 1, detail: ok ? 'HTTP 200' : 'HTTP 503' });

describe('health record state machine', () => {
  it('turns healthy on the first success, unhealthy after unhealthyThreshold failures, healthy after healthyThreshold successes', () => {
    let r = initialRecord('web', 'a');
    r = nextRecord(r, probe(false), CHECK);
    r = nextRecord(r, probe(false), CHECK);
    expect(r.status).toBe('unknown'); // still routable while counting
    r = nextRecord(r, probe(false), CHECK);
    expect(r).toMatchObject({ status: 'unhealthy', consecutive: 3 });
    const since = r.since;
    r = nextRecord(r, probe(true), CHECK);
    expect(r).toMatchObject({ status: 'unhealthy', consecutive: 1, since });
    r = nextRecord(r, probe(true), CHECK);
    expect(r).toMatchObject({ status: 'healthy', consecutive: 2 });
    r = nextRecord(initialRecord('web', 'b'), probe(true), CHECK);
    expect(r.status).toBe('healthy');
  });
});

function source(config: VersionedConfig): ConfigSource & { push(c: VersionedConfig): void } {
  const listeners = new Set<(c: VersionedConfig) => void>();
  let latest = config;
  return {
    latest: () => latest,
    subscribe: (l) => (listeners.add(l), () => listeners.delete(l)),
    push(c) {
      latest = c;
      for (const l of listeners) l(c);
    },
  };
}

const config = (backends: string[], check: HealthCheck | undefined = CHECK): VersionedConfig => ({
  version: 1,
  config: {
    pools: {
      web: {
        algorithm: 'round_robin',
        backends: backends.map((id, i) => ({ id, address: `10.0.0.${i + 1}:80`, weight: 1, state: 'active' as const })),
        ...(check ? { healthCheck: check } : {}),
      },
    },
    routes: {},
  },
});

describe('HealthChecker', () => {
  it('probes only while leader, records results and deletes records of backends that left', async () => {
    const store = new MemoryHealthStore();
    const leadership = new StaticLeadership();
    const outcomes = new Map<string, boolean>([
      ['a', true],
      ['b', false],
    ]);
    let probes = 0;
    const fake: Probe = async (target): Promise<ProbeResult> => {
      probes++;
      return { ok: outcomes.get(target.backendId) ?? true, latencyMs: 1, detail: 'fake' };
    };
    const cfg = source(config(['a', 'b']));
    const checker = new HealthChecker({ config: cfg, leadership, store, probes: { http: fake, tcp: fake, grpc: fake }, replica: 'r1', logger });
    checker.start();
    await new Promise((r) => setTimeout(r, 250));
    expect(probes).toBe(0); // not leader: no probes at all
    leadership.set(true);
    await waitFor('a healthy, b unhealthy', () => store.records.get('web/a')?.status === 'healthy' && store.records.get('web/b')?.status === 'unhealthy');
    cfg.push(config(['a']));
    await waitFor('b forgotten', () => !store.records.has('web/b'));
    leadership.set(false);
    const count = probes;
    await new Promise((r) => setTimeout(r, 250));
    expect(probes).toBeLessThanOrEqual(count + 1); // at most one already in flight
    checker.stop();
  });

  it('elected before it has read any config, keeps the recorded health instead of deleting it all', async () => {
    const store = new MemoryHealthStore();
    const fence = { key: 'k', createRevision: '1' };
    const down = nextRecord(nextRecord(nextRecord(initialRecord('web', 'a'), probe(false), CHECK), probe(false), CHECK), probe(false), CHECK);
    await store.put(down, fence);
    const leadership = new StaticLeadership();
    const listeners = new Set<(c: VersionedConfig) => void>();
    let latest: VersionedConfig | undefined;
    const cfg: ConfigSource = { latest: () => latest, subscribe: (l) => (listeners.add(l), () => listeners.delete(l)) };
    const never: Probe = () => new Promise<ProbeResult>(() => undefined);
    const checker = new HealthChecker({ config: cfg, leadership, store, probes: { http: never, tcp: never, grpc: never }, replica: 'r1', logger });
    checker.start();
    leadership.set(true);
    await new Promise((r) => setTimeout(r, 50));
    // Not knowing the config yet is not knowing that backend a left it.
    expect(store.records.get('web/a')?.status).toBe('unhealthy');
    latest = config(['a']);
    for (const l of listeners) l(latest);
    await new Promise((r) => setTimeout(r, 50));
    expect(store.records.get('web/a')?.status).toBe('unhealthy');
    checker.stop();
  });

  it('lists targets only for pools with a healthCheck and backends that are not disabled', () => {
    const c = config(['a', 'b']).config;
    c.pools.web!.backends[1]!.state = 'disabled';
    c.pools.plain = { algorithm: 'round_robin', backends: [{ id: 'x', address: '10.0.0.9:80', weight: 1, state: 'active' }] };
    expect(probeTargets(c).map((t) => `${t.pool}/${t.backendId}`)).toEqual(['web/a']);
  });
});

describe('HealthFeed', () => {
  it('pushes deltas only when a status moves, with a growing revision, and a full state on demand', async () => {
    const store = new MemoryHealthStore();
    const feed = new HealthFeed({ store, logger });
    const deltas: HealthDelta[] = [];
    feed.subscribe((d) => deltas.push(d));
    // Nothing to push before the store was read: a node keeps what it holds meanwhile.
    expect(feed.full()).toBeUndefined();
    feed.start();
    await waitFor('first list', () => (feed.full()?.revision ?? 0) > 0);
    const fence = { key: 'k', createRevision: '1' };
    const healthy = nextRecord(initialRecord('web', 'a'), probe(true), CHECK);
    await store.put(healthy, fence);
    await store.put({ ...healthy, consecutive: 5 }, fence); // bookkeeping only: no push
    await store.put(nextRecord(nextRecord(nextRecord(healthy, probe(false), CHECK), probe(false), CHECK), probe(false), CHECK), fence);
    await store.remove('web', 'a', fence);
    // The first list reaches subscribers even when it found nothing: streams opened before it wait for it.
    expect(deltas.map((d) => d.backends.map((b) => b.status))).toEqual([[], ['healthy'], ['unhealthy'], ['unknown']]);
    expect(deltas.every((d, i) => !d.full && (i === 0 || d.revision > deltas[i - 1]!.revision))).toBe(true);
    expect(feed.full()?.backends).toEqual([]);
    feed.stop();
  });
});

describe('HealthFeed re-list racing the watch', () => {
  it('never lets a list read before a change it already pushed turn that change back', async () => {
    /** A store whose list() reads its snapshot at once but answers only when told to. */
    class LaggingStore extends MemoryHealthStore {
      hold = false;
      release: (() => void) | undefined;
      override async list(pool?: string) {
        const snapshot = await super.list(pool);
        if (this.hold) await new Promise<void>((r) => (this.release = r));
        return snapshot;
      }
    }
    const store = new LaggingStore();
    const fence = { key: 'k', createRevision: '1' };
    const healthy = nextRecord(initialRecord('web', 'a'), probe(true), CHECK);
    await store.put(healthy, fence);
    const feed = new HealthFeed({ store, logger });
    const deltas: HealthDelta[] = [];
    feed.subscribe((d) => deltas.push(d));
    feed.start();
    await waitFor('first list', () => feed.full()?.backends.length === 1);
    // A periodic re-list reads the store, then the backend goes unhealthy before the list's answer is handled.
    store.hold = true;
    const relist = feed.resync();
    await waitFor('list read', () => store.release !== undefined);
    store.hold = false;
    const unhealthy = nextRecord(nextRecord(nextRecord(healthy, probe(false), CHECK), probe(false), CHECK), probe(false), CHECK);
    await store.put(unhealthy, fence);
    expect(deltas.at(-1)!.backends).toMatchObject([{ backendId: 'a', status: 'unhealthy' }]);
    store.release!();
    await relist;
    await new Promise((r) => setTimeout(r, 20));
    expect(feed.full()?.backends).toMatchObject([{ backendId: 'a', status: 'unhealthy' }]);
    expect(deltas.at(-1)!.backends).toMatchObject([{ backendId: 'a', status: 'unhealthy' }]);
    feed.stop();
  });
});

describe('HealthFeed resync requested during a list', () => {
  it('lists once more after the running list instead of dropping the request', async () => {
    class HeldStore extends MemoryHealthStore {
      hold = false;
      release: (() => void) | undefined;
      lists = 0;
      override async list(pool?: string) {
        this.lists++;
        const snapshot = await super.list(pool);
        if (this.hold) await new Promise<void>((r) => (this.release = r));
        return snapshot;
      }
    }
    const store = new HeldStore();
    const feed = new HealthFeed({ store, logger });
    feed.start();
    await waitFor('first list', () => (feed.full()?.revision ?? 0) > 0);
    store.hold = true;
    const relist = feed.resync();
    await waitFor('list read', () => store.release !== undefined);
    store.hold = false;
    // The watch was down meanwhile (its events are lost) and asks for a re-list on reconnect.
    const healthy = nextRecord(initialRecord('web', 'a'), probe(true), CHECK);
    store.revision++;
    store.records.set('web/a', healthy);
    const again = feed.resync();
    store.release!();
    await relist;
    await again;
    await waitFor('the requested re-list', () => feed.full()?.backends.length === 1, 1_000);
    expect(feed.full()?.backends).toMatchObject([{ backendId: 'a', status: 'healthy' }]);
    expect(store.lists).toBe(3);
    feed.stop();
  });
});

describe('probes', () => {
  it('http: expected statuses succeed, others and refused connections fail; the replica header is sent', async () => {
    let status = 200;
    let replica: unknown;
    const server = createServer((req, res) => {
      replica = req.headers['x-lb-probe-replica'];
      res.writeHead(status).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const target = { pool: 'web', backendId: 'a', address, check: { ...CHECK, expectedStatuses: ['200-299'] } };
    expect(await httpProbe(target, { timeoutMs: 500, replica: 'cp-1' })).toMatchObject({ ok: true, detail: 'HTTP 200' });
    expect(replica).toBe('cp-1');
    status = 503;
    expect(await httpProbe(target, { timeoutMs: 500, replica: 'cp-1' })).toMatchObject({ ok: false, detail: 'HTTP 503' });
    expect(await tcpProbe(target, { timeoutMs: 500, replica: 'cp-1' })).toMatchObject({ ok: true });
    await new Promise((r) => server.close(r));
    expect((await httpProbe(target, { timeoutMs: 500, replica: 'cp-1' })).ok).toBe(false);
    expect((await tcpProbe(target, { timeoutMs: 500, replica: 'cp-1' })).detail).toMatch(/ECONNREFUSED/);
  });

  it('grpc: decodes the serving status', () => {
    expect(decodeServingStatus(Buffer.from([0x08, 0x01]))).toBe(1);
    expect(decodeServingStatus(Buffer.from([0x08, 0x02]))).toBe(2);
    expect(decodeServingStatus(Buffer.alloc(0))).toBe(0);
  });
});
