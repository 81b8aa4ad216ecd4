import { describe, expect, it } from 'vitest';
import type { StickyOptions } from '@lb/shared';
import { createBalancer, type BalancerConfig } from '../src/balancer/factory.js';
import { BackendRuntime } from '../src/balancer/host.js';
import { findCookie, findQuery } from '../src/balancer/request-context.js';
import { signStickyValue, stickySetCookie } from '../src/balancer/sticky.js';
import { fixedClock, hosts, range, request, seeded } from './balancer-helpers.js';

const sticky: StickyOptions = { cookie: 'lb_affinity', ttlSeconds: 0, secure: false, httpOnly: true, sameSite: 'Lax' };
const pool: BalancerConfig = { algorithm: 'round_robin', sticky };

/** One data-plane node's balancer for pool `web`: its own runtimes, randomness and start position. */
function node(seed: number, ids = range('b', 5), secret = 'shared-secret') {
  return createBalancer(pool, hosts(ids), { random: seeded(seed), clock: fixedClock, poolName: 'web', stickySecret: secret });
}

/** The cookie value a Set-Cookie header sets. */
function cookieValue(setCookie: string | undefined): string {
  return setCookie!.split(';')[0]!.split('=')[1]!;
}

describe('sticky sessions', () => {
  it('pins a new client with a signed cookie naming the backend, then honours it', () => {
    const b = node(1);
    const first = request();
    const h = b.pick(first)!;
    expect(first.setCookie).toMatch(new RegExp(`^lb_affinity=${h.id}\\.[A-Za-z0-9_-]{22}; Path=/; HttpOnly; SameSite=Lax$`));
    const value = cookieValue(first.setCookie);
    for (let i = 0; i < 10; i++) {
      const again = request({ headers: { cookie: `other=1; lb_affinity=${value}` } });
      expect(b.pick(again)!.id).toBe(h.id);
      expect(again.setCookie).toBeUndefined(); // already pinned: nothing to set
    }
  });

  it('a cookie set by one node is honoured by another (same secret, no shared state)', () => {
    const a = node(1);
    const b = node(2); // different start position and randomness
    const ctx = request();
    const pinned = a.pick(ctx)!.id;
    const value = cookieValue(ctx.setCookie);
    for (let i = 0; i < 10; i++) expect(b.pick(request({ headers: { cookie: `lb_affinity=${value}` } }))!.id).toBe(pinned);
  });

  it('works on top of any algorithm', () => {
    for (const algorithm of ['least_connections', 'p2c', 'maglev', 'weighted_random'] as const) {
      const b = createBalancer({ algorithm, sticky }, hosts(range('b', 5)), { random: seeded(3), clock: fixedClock, poolName: 'web', stickySecret: 's' });
      const ctx = request({ ip: '10.0.0.1' });
      const id = b.pick(ctx)!.id;
      const cookie = `lb_affinity=${cookieValue(ctx.setCookie)}`;
      for (let i = 0; i < 5; i++) expect(b.pick(request({ ip: `10.0.0.${i + 2}`, headers: { cookie } }))!.id, algorithm).toBe(id);
    }
  });

  it('re-pins when the backend is gone (removed, unhealthy, draining), is forged, or signed with another secret', () => {
    const b = node(1, ['b0', 'b1', 'b2']);
    const forged = [
      `b9.${cookieValue(`x=${signStickyValue('shared-secret', 'web', 'b9')}`).split('.')[1]}`, // a backend this pool no longer has
      'b1.AAAAAAAAAAAAAAAAAAAAAA', // bad signature
      signStickyValue('other-secret', 'web', 'b1'),
      signStickyValue('shared-secret', 'api', 'b1'), // another pool's cookie
      'garbage',
    ];
    for (const value of forged) {
      const ctx = request({ headers: { cookie: `lb_affinity=${value}` } });
      const h = b.pick(ctx)!;
      expect(ctx.setCookie, value).toBe(stickySetCookie(sticky, signStickyValue('shared-secret', 'web', h.id)));
    }
  });

  it('signs once per backend and secret, not per request', () => {
    const rt = new BackendRuntime();
    const hs = hosts(['a'], [], new Map([['a', rt]]));
    createBalancer(pool, hs, { random: seeded(1), clock: fixedClock, poolName: 'web', stickySecret: 's1' });
    const cached = rt.stickyValue;
    expect(cached).toBe(signStickyValue('s1', 'web', 'a'));
    createBalancer(pool, hs, { random: seeded(1), clock: fixedClock, poolName: 'web', stickySecret: 's2' });
    expect(rt.stickyValue).toBe(signStickyValue('s2', 'web', 'a'));
  });

  it('writes the cookie attributes as configured', () => {
    expect(stickySetCookie({ cookie: 'srv', ttlSeconds: 3600, secure: true, httpOnly: false, sameSite: 'None' }, 'v')).toBe(
      'srv=v; Path=/; Max-Age=3600; Secure; SameSite=None',
    );
  });
});

describe('request context parsing', () => {
  it('finds cookies among several, with spaces and quotes', () => {
    expect(findCookie('a=1; lb=xyz; c=3', 'lb')).toBe('xyz');
    expect(findCookie('lbx=1;lb="q"', 'lb')).toBe('q');
    expect(findCookie('xlb=1', 'lb')).toBeUndefined();
    expect(findCookie('', 'lb')).toBeUndefined();
  });

  it('finds query parameters, decoded', () => {
    expect(findQuery('/p?a=1&user=j%C3%BCrgen+x', 'user')).toBe('jürgen x');
    expect(findQuery('/p?username=1', 'user')).toBeUndefined();
    expect(findQuery('/p?flag&x=1', 'flag')).toBe('');
    expect(findQuery('/p', 'a')).toBeUndefined();
  });

  it('reads the cookie from any Cookie header line', () => {
    expect(request({ headers: { Cookie: 'a=1', COOKIE: 'b=2' } }).cookie('b')).toBe('2');
  });
});
