import { describe, expect, it } from 'vitest';
import { EMPTY_PICK_CONTEXT } from '../src/balancer/balancer.js';
import { createBalancer } from '../src/balancer/factory.js';
import { hashBytes, hashString } from '../src/balancer/hash.js';
import { requestStarted } from '../src/balancer/host.js';
import { buildMaglevTable, MAGLEV_TABLE_SIZE } from '../src/balancer/maglev.js';
import type { BalancerConfig } from '../src/balancer/factory.js';
import { counts, fixedClock, hosts, range, request, seeded } from './balancer-helpers.js';

const deps = { random: seeded(5), clock: fixedClock };
const keys = range('user-', 20_000);

/** Where each key goes, hashing it as the value of header x-user. */
function mapping(pool: BalancerConfig, ids: string[], weights: number[] = []): string[] {
  const b = createBalancer({ ...pool, hashOn: { source: 'header', name: 'X-User' } }, hosts(ids, weights), deps);
  return keys.map((k) => b.pick(request({ headers: { 'x-user': k } }))!.id);
}

function moved(a: string[], b: string[]): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n / a.length;
}

describe('hashString (MurmurHash3 x86_32)', () => {
  it('matches the reference test vectors', () => {
    expect(hashString('', 0)).toBe(0);
    expect(hashString('', 1)).toBe(0x514e28b7);
    expect(hashString('', 0xffffffff)).toBe(0x81f16f39);
    expect(hashString('hello', 0)).toBe(0x248bfa47);
    expect(hashString('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
  });

  it('hashes the UTF-8 bytes, with or without the ASCII fast path', () => {
    for (const s of ['a', 'ab', 'abc', 'abcd', '10.0.0.1', 'über', '日本', 'emoji 🎉']) expect(hashString(s, 7)).toBe(hashBytes(Buffer.from(s, 'utf8'), 7));
  });
});

describe.each([
  ['consistent_hash', { algorithm: 'consistent_hash' } as BalancerConfig],
  ['maglev', { algorithm: 'maglev' } as BalancerConfig],
])('%s', (_name, pool) => {
  const ten = range('b', 10);

  it('maps the same key to the same backend, on every node (two independent builds)', () => {
    expect(mapping(pool, ten)).toEqual(mapping(pool, [...ten].reverse()));
  });

  it('spreads keys evenly', () => {
    for (const [, n] of counts(mapping(pool, ten))) {
      expect(n / keys.length).toBeGreaterThan(0.1 * 0.75);
      expect(n / keys.length).toBeLessThan(0.1 * 1.25);
    }
  });

  it('respects weights', () => {
    const c = counts(mapping(pool, ['a', 'b', 'c'], [2, 1, 1]));
    expect(c.get('a')! / keys.length).toBeGreaterThan(0.42);
    expect(c.get('a')! / keys.length).toBeLessThan(0.58);
  });

  it('moves about 1/11 of the keys when an 11th backend joins, and only keys of the new one', () => {
    const before = mapping(pool, ten);
    const after = mapping(pool, [...ten, 'b10']);
    const share = moved(before, after);
    expect(share).toBeGreaterThan((1 / 11) * 0.5);
    expect(share).toBeLessThanOrEqual((1 / 11) * 1.5);
    if (pool.algorithm === 'consistent_hash') for (let i = 0; i < keys.length; i++) if (before[i] !== after[i]) expect(after[i]).toBe('b10');
  });

  it('moves only the removed backend’s keys (ring) or about them (maglev) when one leaves', () => {
    const before = mapping(pool, ten);
    const after = mapping(
      pool,
      ten.filter((id) => id !== 'b3'),
    );
    expect(moved(before, after)).toBeLessThanOrEqual(0.1 * 1.5);
    for (let i = 0; i < keys.length; i++) if (before[i] === 'b3') expect(after[i]).not.toBe('b3');
  });

  it('falls back to a random pick when the key is missing', () => {
    const b = createBalancer({ ...pool, hashOn: { source: 'header', name: 'x-user' } }, hosts(ten), deps);
    const seen = new Set(Array.from({ length: 200 }, () => b.pick(request())!.id));
    expect(seen.size).toBeGreaterThan(5);
  });
});

describe('hashOn sources', () => {
  const pool = (hashOn: BalancerConfig['hashOn']) => createBalancer({ algorithm: 'maglev', hashOn }, hosts(range('b', 50)), deps);

  it('reads the client ip, a header, a cookie, the path or a query parameter', () => {
    const cases: [BalancerConfig['hashOn'], Parameters<typeof request>[0], Parameters<typeof request>[0]][] = [
      [{ source: 'ip' }, { ip: '10.1.2.3', url: '/a' }, { ip: '10.1.2.3', url: '/b' }],
      [
        { source: 'header', name: 'X-Tenant' },
        { headers: { 'x-tenant': 't1' }, ip: '1.1.1.1' },
        { headers: { 'X-TENANT': 't1' }, ip: '2.2.2.2' },
      ],
      [{ source: 'cookie', name: 'sid' }, { headers: { cookie: 'a=1; sid=abc' } }, { headers: { cookie: 'sid="abc"' }, url: '/other' }],
      [{ source: 'path' }, { url: '/cart?x=1', ip: '1.1.1.1' }, { url: '/cart?y=2', ip: '2.2.2.2' }],
      [{ source: 'query', name: 'user' }, { url: '/a?user=bob&x=1' }, { url: '/b?x=2&user=bob' }],
    ];
    for (const [on, a, b] of cases) {
      const balancer = pool(on);
      const first = balancer.pick(request(a))!.id;
      expect(balancer.pick(request(b))!.id, on!.source).toBe(first);
      // A different key lands elsewhere for at least some of 20 tries.
      const others = new Set(
        range('k', 20).map((k) => balancer.pick(request({ ip: k, headers: { 'x-tenant': k, cookie: `sid=${k}` }, url: `/${k}?user=${k}` }))!.id),
      );
      expect(others.size, on!.source).toBeGreaterThan(1);
    }
  });
});

describe('maglev table', () => {
  it('has 65537 entries, all filled, shares within a few percent', () => {
    const table = buildMaglevTable(range('b', 10), new Array(10).fill(1));
    expect(table.length).toBe(MAGLEV_TABLE_SIZE);
    const c = counts(table);
    expect(c.has(-1)).toBe(false);
    for (const [, n] of c) expect(Math.abs(n - MAGLEV_TABLE_SIZE / 10) / (MAGLEV_TABLE_SIZE / 10)).toBeLessThan(0.03);
  });
});

describe('consistent_hash bounded load (hashBalanceFactor)', () => {
  it('walks past a host over its share of the in-flight requests', () => {
    const hs = hosts(range('b', 4));
    const plain = createBalancer({ algorithm: 'consistent_hash', hashOn: { source: 'header', name: 'k' } }, hs, deps);
    const hot = request({ headers: { k: 'hot-key' } });
    const home = plain.pick(hot)!;
    const bounded = createBalancer(
      { algorithm: 'consistent_hash', hashOn: { source: 'header', name: 'k' }, consistentHash: { virtualNodes: 100, hashBalanceFactor: 150 } },
      hs,
      deps,
    );
    const seen: string[] = [];
    for (let i = 0; i < 40; i++) {
      const h = bounded.pick(hot)!;
      requestStarted(h.runtime);
      seen.push(h.id);
    }
    const c = counts(seen);
    // 40 in flight over 4 hosts: none above ceil(1.5 × 40/4) = 15.
    for (const [, n] of c) expect(n).toBeLessThanOrEqual(15);
    expect(c.get(home.id)).toBeGreaterThanOrEqual(14);
  });
});

describe('ip_hash', () => {
  it('keeps a client on one backend, spreads clients by weight', () => {
    const b = createBalancer({ algorithm: 'ip_hash' }, hosts(['a', 'b', 'c'], [2, 1, 1]), deps);
    expect(b.pick(request({ ip: '10.0.0.7' }))!.id).toBe(b.pick(request({ ip: '10.0.0.7', url: '/x' }))!.id);
    const c = counts(range('', 8000).map((i) => b.pick(request({ ip: `10.${(Number(i) >> 8) & 255}.${Number(i) & 255}.1` }))!.id));
    expect(c.get('a')! / 8000).toBeGreaterThan(0.45);
    expect(c.get('a')! / 8000).toBeLessThan(0.55);
  });

  it('falls back to a weighted random pick without a client address', () => {
    const b = createBalancer({ algorithm: 'ip_hash' }, hosts(['a', 'b', 'c']), deps);
    expect(new Set(Array.from({ length: 100 }, () => b.pick(EMPTY_PICK_CONTEXT)!.id)).size).toBe(3);
  });
});
