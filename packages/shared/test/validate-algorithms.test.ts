import { describe, expect, it } from 'vitest';
import { ALGORITHMS } from '../src/config/model.js';
import { validatePool } from '../src/config/validate.js';

const backends = [{ id: 'a', address: '127.0.0.1:9001' }];

function errors(input: unknown): { field: string; message: string }[] {
  const result = validatePool(input, 'pools.web');
  return result.ok ? [] : result.errors;
}

describe('pool algorithm settings', () => {
  it('accepts every algorithm name', () => {
    for (const algorithm of ALGORITHMS) expect(validatePool({ algorithm, backends }).ok, algorithm).toBe(true);
    expect(ALGORITHMS).toHaveLength(12);
  });

  it('fills defaults inside the blocks that are present and adds none that are absent', () => {
    const plain = validatePool({ algorithm: 'round_robin', backends });
    expect(plain.ok && Object.keys(plain.value).sort()).toEqual(['algorithm', 'backends']);

    const r = validatePool({ algorithm: 'consistent_hash', backends, consistentHash: {}, sticky: {} });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.consistentHash).toEqual({ virtualNodes: 100 });
    expect(r.value.sticky).toEqual({ cookie: 'lb_affinity', ttlSeconds: 0, secure: false, httpOnly: true, sameSite: 'Lax' });
    const p = validatePool({ algorithm: 'p2c', backends, p2c: {} });
    expect(p.ok && p.value.p2c).toEqual({ bias: 1 });
    const l = validatePool({ algorithm: 'least_response_time', backends, leastResponseTime: {} });
    expect(l.ok && l.value.leastResponseTime).toEqual({ decayMs: 10000 });
    const rb = validatePool({ algorithm: 'resource_based', backends, resourceBased: {} });
    expect(rb.ok && rb.value.resourceBased).toEqual({ header: 'x-backend-load', decayMs: 5000, minWeightPercent: 10 });
  });

  it('requires hashOn.name for header, cookie and query, and refuses it for ip and path', () => {
    for (const source of ['header', 'cookie', 'query']) {
      expect(errors({ algorithm: 'maglev', backends, hashOn: { source } })).toEqual([
        { field: 'pools.web.hashOn.name', message: `is required when source is ${source}` },
      ]);
      expect(errors({ algorithm: 'maglev', backends, hashOn: { source, name: 'x-user' } })).toEqual([]);
    }
    expect(errors({ algorithm: 'consistent_hash', backends, hashOn: { source: 'ip', name: 'x' } })).toEqual([
      { field: 'pools.web.hashOn.name', message: 'is not used when source is ip' },
    ]);
    expect(errors({ algorithm: 'consistent_hash', backends, hashOn: { source: 'header', name: 'bad header' } })[0]?.field).toBe('pools.web.hashOn.name');
    expect(errors({ algorithm: 'consistent_hash', backends, hashOn: { source: 'body' } })[0]).toEqual({
      field: 'pools.web.hashOn.source',
      message: 'must be one of: ip, header, cookie, path, query',
    });
  });

  it('refuses a settings block on an algorithm that does not read it', () => {
    expect(errors({ algorithm: 'round_robin', backends, hashOn: { source: 'ip' }, p2c: { bias: 1 } })).toEqual([
      { field: 'pools.web.hashOn', message: 'is only used by algorithm consistent_hash or maglev, not round_robin' },
      { field: 'pools.web.p2c', message: 'is only used by algorithm p2c, not round_robin' },
    ]);
    expect(errors({ algorithm: 'maglev', backends, consistentHash: {} })).toEqual([
      { field: 'pools.web.consistentHash', message: 'is only used by algorithm consistent_hash, not maglev' },
    ]);
  });

  it('reports out-of-range and unknown settings with the field at fault', () => {
    const found = errors({
      algorithm: 'consistent_hash',
      backends,
      consistentHash: { virtualNodes: 0, hashBalanceFactor: 50, extra: 1 },
    }).map((e) => e.field);
    expect(found).toEqual(
      expect.arrayContaining(['pools.web.consistentHash.virtualNodes', 'pools.web.consistentHash.hashBalanceFactor', 'pools.web.consistentHash.extra']),
    );
    expect(errors({ algorithm: 'p2c', backends, p2c: { bias: -1 } })[0]?.field).toBe('pools.web.p2c.bias');
    expect(
      errors({ algorithm: 'resource_based', backends, resourceBased: { minWeightPercent: 0, header: 'x y' } })
        .map((e) => e.field)
        .sort(),
    ).toEqual(['pools.web.resourceBased.header', 'pools.web.resourceBased.minWeightPercent']);
  });

  it('validates sticky cookies: a token name, and SameSite=None only when secure', () => {
    expect(errors({ algorithm: 'least_connections', backends, sticky: { cookie: 'a b' } })).toEqual([
      { field: 'pools.web.sticky.cookie', message: "must be an HTTP token: letters, digits and !#$%&'*+-.^_`|~" },
    ]);
    expect(errors({ algorithm: 'random', backends, sticky: { sameSite: 'None' } })).toEqual([
      { field: 'pools.web.sticky.secure', message: 'must be true when sameSite is None (browsers drop the cookie otherwise)' },
    ]);
    expect(errors({ algorithm: 'random', backends, sticky: { sameSite: 'None', secure: true, ttlSeconds: 60 } })).toEqual([]);
  });
});
