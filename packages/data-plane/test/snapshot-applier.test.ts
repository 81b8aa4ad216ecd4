import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '@lb/shared';
import { SnapshotCache } from '../src/cache/snapshot-cache.js';
import { resolvePush } from '../src/config/push-resolver.js';
import { checkConfigValue } from '../src/config/snapshot-validate.js';
import { ERROR_CODES } from '../src/errors.js';
import type { UpstreamPools } from '../src/upstream/upstream-pools.js';
import { delta, silentLogger, simpleConfig, snapshot, testApplier } from './helpers.js';

describe('snapshot validation', () => {
  it('accepts a valid config and fills defaults', () => {
    const check = checkConfigValue({ pools: { web: { backends: [{ id: 'a', address: '10.0.0.1:80' }] } } });
    expect(check).toEqual({
      ok: true,
      config: { pools: { web: { algorithm: 'round_robin', backends: [{ id: 'a', address: '10.0.0.1:80', weight: 1, state: 'active' }] } }, routes: {} },
    });
  });

  it('names every problem in the NACK reason', () => {
    const check = checkConfigValue({
      pools: { web: { algorithm: 'magic', backends: [{ id: 'a', address: 'nope', weight: 0 }] } },
      routes: { r: { pools: [{ pool: 'missing' }] } },
    });
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.code).toBe(ERROR_CODES.SNAPSHOT_INVALID);
    expect(check.error).toContain('pools.web.algorithm');
    expect(check.error).toContain('pools.web.backends[0].weight');
  });

  it('refuses text that is not JSON and bad versions', () => {
    expect(resolvePush(undefined, { ...snapshot(2, {}), configJson: '{nope' })).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_JSON });
    expect(resolvePush(undefined, snapshot(2 ** 60, simpleConfig([])))).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_INVALID });
  });
});

describe('SnapshotApplier', () => {
  const pools: UpstreamPools[] = [];
  afterEach(async () => {
    await Promise.all(pools.map((p) => p.closeAll()));
    pools.length = 0;
  });

  function applier(cache?: SnapshotCache) {
    let now = 1_700_000_000_000;
    const { applier: a, upstreams, metrics } = testApplier({ clock: { now: () => now++ }, cache });
    pools.push(upstreams);
    return { a, upstreams, metrics };
  }

  it('applies a good snapshot, NACKs a bad one and keeps the old table', async () => {
    const { a, upstreams, metrics } = applier();
    expect(a.onConfig(snapshot(1, simpleConfig(['10.0.0.1:80'])))).toEqual({ ok: true });
    const good = a.current;
    expect(good?.version).toBe(1);
    const bad = await a.onConfig(snapshot(2, { pools: { web: { backends: [{ id: 'a', address: 'no-port' }] } } }));
    expect(bad.ok).toBe(false);
    expect(a.current).toBe(good);
    expect(a.appliedVersion()).toBe(1);
    expect(upstreams.addresses()).toEqual(['10.0.0.1:80']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('lb_dp_snapshots_total{result="applied"} 1');
    expect(text).toContain('lb_dp_snapshots_total{result="rejected"} 1');
    expect(text).toContain('lb_dp_config_version 1');
  });

  it('re-ACKs the version it runs without rebuilding, and swaps pools on change', () => {
    const { a, upstreams } = applier();
    a.onConfig(snapshot(4, simpleConfig(['10.0.0.1:80'])));
    const table = a.current;
    expect(a.onConfig(snapshot(4, simpleConfig(['10.0.0.1:80'])))).toEqual({ ok: true });
    expect(a.current).toBe(table);
    a.onConfig(snapshot(5, simpleConfig(['10.0.0.2:80'])));
    expect(upstreams.addresses()).toEqual(['10.0.0.2:80']);
    expect(a.describe()).toMatchObject({
      version: 5,
      source: 'control-plane',
      pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b0', address: '10.0.0.2:80', weight: 1, state: 'active' }] } },
    });
  });

  it('writes applied snapshots to the cache and starts from it', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'lb-dp-test-')), 'nested', 'cache.json');
    const first = applier(new SnapshotCache(path, silentLogger));
    first.a.onConfig(snapshot(7, simpleConfig(['10.0.0.1:80'])));
    await (first.a as unknown as { deps: { cache: SnapshotCache } }).deps.cache!.flush();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ version: 7, config: simpleConfig(['10.0.0.1:80']) });

    const second = applier(new SnapshotCache(path, silentLogger));
    expect(second.a.loadCache()).toBe(7);
    expect(second.a.describe()).toMatchObject({ version: 7, source: 'cache' });
    // The control plane confirms the same version: ACK, and the source becomes the control plane.
    expect(second.a.onConfig(snapshot(7, simpleConfig(['10.0.0.1:80'])))).toEqual({ ok: true });
    expect(second.a.describe().source).toBe('control-plane');
  });
});

describe('SnapshotApplier with deltas', () => {
  const closers: UpstreamPools[] = [];
  afterEach(async () => {
    await Promise.all(closers.map((p) => p.closeAll()));
    closers.length = 0;
  });

  function bigConfig(pools: number, backends: number, changed?: { pool: number; backend: number; weight: number }): Config {
    const config: Config = { pools: {}, routes: {} };
    for (let p = 0; p < pools; p++) {
      config.pools[`pool-${p}`] = {
        algorithm: 'weighted_round_robin',
        backends: Array.from({ length: backends }, (_, b) => ({
          id: `b${b}`,
          address: `10.${p}.${b >> 8}.${b & 255}:80`,
          weight: changed?.pool === p && changed.backend === b ? changed.weight : 1,
          state: 'active' as const,
        })),
      };
      config.routes[`route-${p}`] = { match: { host: `h${p}.example.com` }, pools: [{ pool: `pool-${p}`, weight: 1 }] };
    }
    return config;
  }

  it('applies a one-backend delta to a 100,000-backend config by rebuilding that pool only, in one swap', () => {
    const { applier: a, upstreams } = testApplier();
    closers.push(upstreams);
    const before = bigConfig(100, 1000);
    expect(a.onConfig(snapshot(1, before, 'h1'))).toEqual({ ok: true });
    const old = a.current!;
    const after = bigConfig(100, 1000, { pool: 42, backend: 500, weight: 7 });
    const push = delta({ version: 1, config: before }, { version: 2, config: after }, 'h1');
    expect(push.upserted.map((r) => r.name)).toEqual(['pool-42']);
    expect(a.onConfig(push)).toEqual({ ok: true });
    const next = a.current!;
    expect(next).not.toBe(old);
    expect(next.version).toBe(2);
    for (const [name, pool] of next.pools) {
      if (name === 'pool-42') {
        expect(pool).not.toBe(old.pools.get(name));
        expect(pool.backends[500]!.weight).toBe(7);
      } else expect(pool, name).toBe(old.pools.get(name));
    }
    // The table requests already hold is whole and unchanged.
    expect(old.version).toBe(1);
    expect(old.pools.get('pool-42')!.backends[500]!.weight).toBe(1);
    expect(a.runningConfig()).toEqual({ version: 2, historyId: 'h1', digest: push.digest });
  });

  it('keeps the running table when a delta does not apply, and says what it runs in Hello terms', async () => {
    const { applier: a, upstreams } = testApplier();
    closers.push(upstreams);
    const config = simpleConfig(['10.0.0.1:80']);
    a.onConfig(snapshot(3, config, 'h1'));
    const table = a.current;
    const outcome = await a.onConfig(delta({ version: 2, config }, { version: 4, config: simpleConfig(['10.0.0.2:80']) }, 'h1'));
    expect(outcome).toMatchObject({ ok: false });
    expect(!outcome.ok && outcome.error).toMatch(/^DP_ERR_SNAPSHOT_BASE_MISMATCH: /);
    expect(a.current).toBe(table);
    expect(a.runningConfig()).toMatchObject({ version: 3, historyId: 'h1' });
  });
});

describe('SnapshotCache', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'lb-dp-cache-'));

  it('writes atomically: the file always holds a whole snapshot, the newest one last', async () => {
    const path = join(dir(), 'c.json');
    const writes: boolean[] = [];
    const cache = new SnapshotCache(path, silentLogger, { onWrite: (ok) => writes.push(ok) });
    for (let v = 1; v <= 20; v++) cache.save({ version: v, historyId: 'h1', config: simpleConfig([`10.0.0.${v}:80`]) });
    await cache.flush();
    // Saves made while a write is running collapse into one write of the newest.
    expect(writes.length).toBeLessThan(20);
    expect(writes.every(Boolean)).toBe(true);
    expect(cache.load()).toEqual({ version: 20, historyId: 'h1', config: simpleConfig(['10.0.0.20:80']) });
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
  });

  it('ignores a missing, corrupt or invalid file', () => {
    const d = dir();
    expect(new SnapshotCache(join(d, 'missing.json'), silentLogger).load()).toBeUndefined();
    for (const [name, body] of [
      ['garbage.json', '{"version": 3, "config": {'],
      ['noversion.json', JSON.stringify({ config: simpleConfig([]) })],
      ['invalid.json', JSON.stringify({ version: 2, config: { pools: { web: { algorithm: 'nope' } } } })],
      ['array.json', '[]'],
    ] as const) {
      writeFileSync(join(d, name), body);
      expect(new SnapshotCache(join(d, name), silentLogger).load()).toBeUndefined();
    }
  });

  it('reports a failed write without throwing', async () => {
    const d = dir();
    writeFileSync(join(d, 'file'), 'x');
    const writes: boolean[] = [];
    const cache = new SnapshotCache(join(d, 'file', 'under-a-file.json'), silentLogger, { onWrite: (ok) => writes.push(ok) });
    cache.save({ version: 1, historyId: '', config: simpleConfig([]) });
    await cache.flush();
    expect(writes).toEqual([false]);
  });
});
