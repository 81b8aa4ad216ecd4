/**
 * Resolving a push into the config it leads to: deltas apply on exactly their base, the whole
 * result is validated, unchanged resources stay the running objects, and versions never go back
 * within a history.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '@lb/shared';
import { appliedConfig, type AppliedConfig } from '../src/config/applied-config.js';
import { resolvePush } from '../src/config/push-resolver.js';
import { ERROR_CODES } from '../src/errors.js';
import { delta, snapshot } from './helpers.js';

function valid(config: unknown): Config {
  const result = validateConfig(config);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

const pool = (n: number, weight = 1) => ({
  algorithm: 'round_robin',
  backends: Array.from({ length: n }, (_, i) => ({ id: `b${i}`, address: `10.0.0.${i + 1}:80`, weight })),
});
const one = valid({ pools: { web: pool(2), api: pool(1) }, routes: { all: { match: {}, pools: [{ pool: 'web' }] } } });
const two = valid({ pools: { web: pool(2, 5), api: pool(1), extra: pool(1) }, routes: one.routes });

function running(): AppliedConfig {
  const resolved = resolvePush(undefined, snapshot(1, one, 'h1'));
  if (!resolved.ok) throw new Error(resolved.error);
  return resolved.next;
}

describe('resolvePush', () => {
  it('applies a delta on its base: changed and added resources in, the rest the running objects', () => {
    const base = running();
    const resolved = resolvePush(base, delta({ version: 1, config: one }, { version: 2, config: two }, 'h1'));
    expect(resolved.ok).toBe(true);
    if (!resolved.ok) return;
    expect(resolved.next.version).toBe(2);
    expect(resolved.next.config).toEqual(two);
    expect(resolved.next.config.pools.api).toBe(base.config.pools.api);
    expect(resolved.next.config.routes.all).toBe(base.config.routes.all);
    expect(resolved.next.digest).toBe(appliedConfig(2, 'h1', two).digest);
    // The running config is untouched.
    expect(base.config).toEqual(one);
  });

  it('refuses a delta on another version or history, or one that does not lead to the pushed digest', () => {
    const base = running();
    const push = delta({ version: 1, config: one }, { version: 2, config: two }, 'h1');
    expect(resolvePush(base, { ...push, baseVersion: 3 })).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_BASE_MISMATCH });
    expect(resolvePush(base, { ...push, historyId: 'h2' })).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_BASE_MISMATCH });
    expect(resolvePush(undefined, push)).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_BASE_MISMATCH });
    expect(resolvePush(base, { ...push, upserted: push.upserted.slice(1) })).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_BASE_MISMATCH });
  });

  it('validates the whole result: a delta removing a pool a route still uses is refused', () => {
    const base = running();
    const withoutWeb = { pools: { api: one.pools.api! }, routes: one.routes };
    const resolved = resolvePush(base, delta({ version: 1, config: one }, { version: 2, config: withoutWeb as Config }, 'h1'));
    expect(resolved).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_INVALID });
    expect(resolved.ok || resolved.error).toContain('routes.all.pools[0].pool');
  });

  it('never goes back within a history; another history is applied whatever its number', () => {
    const base = running();
    const later = resolvePush(base, delta({ version: 1, config: one }, { version: 5, config: two }, 'h1'));
    if (!later.ok) throw new Error(later.error);
    expect(resolvePush(later.next, snapshot(3, one, 'h1'))).toMatchObject({ ok: false, code: ERROR_CODES.SNAPSHOT_STALE });
    expect(resolvePush(later.next, snapshot(3, one, 'h1'), { replace: true })).toMatchObject({ ok: true });
    const restored = resolvePush(later.next, snapshot(3, one, 'h2'));
    expect(restored).toMatchObject({ ok: true, unchanged: false });
    expect(restored.ok && restored.next.historyId).toBe('h2');
  });

  it('takes a full snapshot of what runs as unchanged', () => {
    const base = running();
    expect(resolvePush(base, snapshot(1, one, 'h1'))).toEqual({ ok: true, next: base, unchanged: true });
  });
});
