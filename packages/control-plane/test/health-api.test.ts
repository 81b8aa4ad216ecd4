import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { MemoryEjectionStore } from '../src/health/ejection-store.js';
import { MemoryHealthStore } from '../src/health/health-store.js';
import { CpMetrics } from '../src/metrics.js';
import { mergeRegistrations } from '../src/push/push-view.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';
import { MemoryRegistrationStore } from '../src/store/registration-store.js';
import { injectAsAdmin, json, pool, testAuth } from './helpers.js';

async function setup() {
  const store = new MemoryConfigStore();
  const health = { store: new MemoryHealthStore(), registrations: new MemoryRegistrationStore(), ejections: new MemoryEjectionStore() };
  const { authenticator, tokens } = testAuth();
  const app = await buildApp({ store, nodes: new MemoryNodeStore(), metrics: new CpMetrics(), health, auth: { authenticator, tokens } });
  injectAsAdmin(app);
  const put = await app.inject({ method: 'PUT', url: '/v1/pools/web', payload: pool([{ id: 'b1', address: '10.0.0.1:80' }]) });
  expect(put.statusCode).toBe(200);
  return { app, store, health };
}

describe('GET /v1/pools/{pool}/health', () => {
  it('lists every backend, unknown until recorded, with ejections per node', async () => {
    const { app, health } = await setup();
    await health.store.put({
      pool: 'web',
      backend: 'b1',
      status: 'healthy',
      since: '2026-01-01T00:00:00.000Z',
      lastProbe: { at: '2026-01-01T00:00:01.000Z', ok: true, latencyMs: 3, detail: 'HTTP 200' },
      consecutive: 4,
    });
    health.ejections.record('dp-1', {
      ejections: [{ pool: 'web', backendId: 'b1', ejected: true, reason: '5 consecutive 5xx', untilUnixMs: Date.now() + 60_000 }],
    });
    await health.registrations.register('web', { id: 'r1', address: '10.0.0.2:80', weight: 1, state: 'active' }, 10);
    const res = await app.inject({ method: 'GET', url: '/v1/pools/web/health' });
    expect(res.statusCode).toBe(200);
    const body = json<{ backends: Array<Record<string, unknown>> }>(res);
    expect(body.backends).toMatchObject([
      {
        id: 'b1',
        status: 'healthy',
        since: '2026-01-01T00:00:00.000Z',
        consecutive: 4,
        lastProbe: { ok: true, latencyMs: 3 },
        registered: false,
        ejections: [{ node: 'dp-1', reason: '5 consecutive 5xx' }],
      },
      { id: 'r1', status: 'unknown', since: null, lastProbe: null, consecutive: 0, registered: true, ttlSeconds: 10, ejections: [] },
    ]);
    expect((await app.inject({ method: 'GET', url: '/v1/pools/nope/health' })).statusCode).toBe(404);
  });
});

describe('self-registration', () => {
  it('registers on a lease without a config version, renews, and deregisters', async () => {
    const { app, store, health } = await setup();
    const before = await store.currentVersion();
    const reg = await app.inject({ method: 'PUT', url: '/v1/pools/web/backends/r1', payload: { address: '10.0.0.2:80', ttlSeconds: 5 } });
    expect(reg.statusCode).toBe(200);
    expect(json(reg)).toMatchObject({
      version: before,
      committed: false,
      backend: { id: 'r1', address: '10.0.0.2:80', weight: 1, state: 'active' },
      ttlSeconds: 5,
    });
    expect(await store.currentVersion()).toBe(before);
    expect((await app.inject({ method: 'POST', url: '/v1/pools/web/backends/r1/keepalive' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/v1/pools/web/backends/nope/keepalive' })).statusCode).toBe(404);
    const del = await app.inject({ method: 'DELETE', url: '/v1/pools/web/backends/r1' });
    expect(del.statusCode).toBe(200);
    expect(json(del)).toMatchObject({ committed: false, registered: false });
    expect(health.registrations.items.size).toBe(0);
    expect(await store.currentVersion()).toBe(before);
  });

  it('refuses to shadow a configured backend, a bad TTL, and a missing pool', async () => {
    const { app } = await setup();
    const same = await app.inject({ method: 'PUT', url: '/v1/pools/web/backends/b1', payload: { address: '10.0.0.9:80', ttlSeconds: 5 } });
    expect(same.statusCode).toBe(400);
    expect(json<{ errors: Array<{ field: string }> }>(same).errors[0]!.field).toBe('ttlSeconds');
    const addr = await app.inject({ method: 'PUT', url: '/v1/pools/web/backends/r2', payload: { address: '10.0.0.1:80', ttlSeconds: 5 } });
    expect(json<{ errors: Array<{ field: string }> }>(addr).errors[0]!.field).toBe('address');
    const ttl = await app.inject({ method: 'PUT', url: '/v1/pools/web/backends/r2', payload: { address: '10.0.0.3:80', ttlSeconds: 0 } });
    expect(ttl.statusCode).toBe(400);
    expect((await app.inject({ method: 'PUT', url: '/v1/pools/nope/backends/r2', payload: { address: '10.0.0.3:80', ttlSeconds: 5 } })).statusCode).toBe(404);
  });

  it('merges registrations into their pools, config first', () => {
    const config = {
      pools: { web: { algorithm: 'round_robin' as const, backends: [{ id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' as const }] } },
      routes: {},
    };
    const reg = (pool: string, id: string, address: string) => ({
      pool,
      backend: { id, address, weight: 1, state: 'active' as const },
      ttlSeconds: 5,
      registeredAt: '',
      lease: '1',
    });
    const merged = mergeRegistrations(config, [
      reg('web', 'r1', '10.0.0.2:80'),
      reg('web', 'b1', '10.0.0.3:80'),
      reg('web', 'r2', '10.0.0.1:80'),
      reg('gone', 'r3', '10.0.0.4:80'),
    ]);
    expect(merged.pools.web!.backends.map((b) => b.id)).toEqual(['b1', 'r1']);
    expect(config.pools.web.backends).toHaveLength(1); // input untouched
  });
});
