import type { Config, Route } from '@lb/shared';
import { validateConfig } from '@lb/shared';
import { describe, expect, it } from 'vitest';
import { RequestPickContext } from '../src/balancer/request-context.js';
import { DataPlaneMetrics } from '../src/metrics.js';
import { applyHeaderRules, compileHeaderRules } from '../src/routing/header-rules.js';
import { redirectLocation } from '../src/routing/redirect.js';
import { compileRoutingTable, type RoutingTable } from '../src/routing/routing-table.js';
import type { Upstream } from '../src/upstream/upstream.js';

const upstreams = { acquire: (address: string) => ({ address }) as unknown as Upstream };
const metrics = new DataPlaneMetrics({ defaultMetrics: false });

/** Validates (defaults filled, as a node would) and compiles. */
function table(routes: Record<string, Partial<Route> & { match: Route['match'] }>, extra = 0): RoutingTable {
  const raw = { pools: { p: { backends: [{ id: 'b', address: '10.0.0.1:80' }] } }, routes: {} as Record<string, unknown> };
  for (const [name, r] of Object.entries(routes)) raw.routes[name] = { pools: [{ pool: 'p' }], ...r };
  for (let i = 0; i < extra; i++) raw.routes[`filler-${i}`] = { match: { host: `h${i}.example.com`, pathPrefix: `/f${i}` }, pools: [{ pool: 'p' }] };
  const v = validateConfig(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return compileRoutingTable({ version: 1, config: v.value as Config }, { upstreams, metrics, random: () => 0 });
}

function request(method: string, url: string, headers: Record<string, string | string[]> = {}): RequestPickContext {
  const raw: string[] = [];
  for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) raw.push(name, v);
  const ctx = new RequestPickContext();
  ctx.reset(raw, url, undefined, method);
  return ctx;
}

describe('route conditions', () => {
  const t = table({
    base: { match: { pathPrefix: '/app' } },
    canary: { match: { pathPrefix: '/app', headers: [{ name: 'X-Canary', exact: 'on' }] } },
    beta: { match: { pathPrefix: '/app', headers: [{ name: 'cookie', regex: '.*beta=1.*' }] } },
    mobile: { match: { pathPrefix: '/app', headers: [{ name: 'user-agent', prefix: 'mobile/', ignoreCase: true }] } },
    writes: { match: { pathPrefix: '/app', methods: ['POST', 'PUT'] } },
    debug: { match: { pathPrefix: '/app', query: [{ name: 'debug', present: true }] } },
    'no-auth': {
      match: {
        pathPrefix: '/app',
        headers: [
          { name: 'authorization', present: false },
          { name: 'x-api', exact: 'v2' },
        ],
      },
    },
  });
  const m = (method: string, url: string, headers: Record<string, string | string[]> = {}) => t.match(undefined, url, request(method, url, headers))?.name;

  it('falls back to the route without conditions', () => {
    expect(m('GET', '/app/x')).toBe('base');
  });

  it('matches exact header values case-sensitively, names case-insensitively', () => {
    expect(m('GET', '/app/x', { 'x-canary': 'on' })).toBe('canary');
    expect(m('GET', '/app/x', { 'X-CANARY': 'on' })).toBe('canary');
    expect(m('GET', '/app/x', { 'x-canary': 'ON' })).toBe('base');
  });

  it('matches a prefix case-insensitively when asked, and a regex against the whole value', () => {
    expect(m('GET', '/app/x', { 'user-agent': 'Mobile/1.0' })).toBe('mobile');
    expect(m('GET', '/app/x', { cookie: 'a=1; beta=1; c=2' })).toBe('beta');
    expect(m('GET', '/app/x', { cookie: 'beta=10' })).toBe('beta');
    expect(m('GET', '/app/x', { cookie: 'gamma=1' })).toBe('base');
  });

  it('reads several fields of one name as one list', () => {
    expect(m('GET', '/app/x', { cookie: ['a=1', 'beta=1'] })).toBe('beta');
  });

  it('matches methods, query parameters, and headers that are absent', () => {
    expect(m('POST', '/app/x')).toBe('writes');
    expect(m('DELETE', '/app/x')).toBe('base');
    expect(m('GET', '/app/x?debug')).toBe('debug');
    expect(m('GET', '/app/x?debug=0&y=1')).toBe('debug');
    expect(m('GET', '/app/x?nodebug=1')).toBe('base');
    expect(m('GET', '/app/x', { 'x-api': 'v2' })).toBe('no-auth');
    expect(m('GET', '/app/x', { 'x-api': 'v2', authorization: 'Bearer t' })).toBe('base');
  });

  it('tries routes with more conditions first, then by name, and only within the same prefix length', () => {
    // no-auth has two conditions and wins over the one-condition routes when both hold.
    expect(m('POST', '/app/x', { 'x-api': 'v2' })).toBe('no-auth');
    // canary and beta both hold, one condition each: the name decides.
    expect(m('GET', '/app/x', { 'x-canary': 'on', cookie: 'beta=1' })).toBe('beta');
    const longer = table({ short: { match: { pathPrefix: '/a', headers: [{ name: 'x', exact: '1' }] } }, long: { match: { pathPrefix: '/a/b' } } });
    expect(longer.match(undefined, '/a/b/c', request('GET', '/a/b/c', { x: '1' }))?.name).toBe('long');
  });

  it('keeps the same answers when the tier is indexed (many routes)', () => {
    const big = table(
      {
        base: { match: { pathPrefix: '/app' } },
        canary: { match: { pathPrefix: '/app', headers: [{ name: 'x-canary', exact: 'on' }] } },
        other: { match: { pathPrefix: '/other' } },
      },
      50,
    );
    expect(big.match(undefined, '/app/x', request('GET', '/app/x', { 'x-canary': 'on' }))?.name).toBe('canary');
    expect(big.match(undefined, '/app/x', request('GET', '/app/x'))?.name).toBe('base');
    // Without a request view only routes without conditions match.
    expect(big.match(undefined, '/app/x')?.name).toBe('base');
  });
});

describe('route validation', () => {
  const check = (routes: Record<string, unknown>) => {
    const v = validateConfig({ pools: { p: { backends: [] } }, routes });
    return v.ok ? [] : v.errors.map((e) => `${e.field}: ${e.message}`);
  };

  it('refuses two routes with the same host, prefix and conditions, but not with different conditions', () => {
    const a = { match: { pathPrefix: '/x', headers: [{ name: 'X-A', exact: '1' }] }, pools: [{ pool: 'p' }] };
    expect(check({ a, b: { ...a, match: { pathPrefix: '/x', headers: [{ name: 'x-a', exact: '1' }] } } })).toEqual([
      'routes.b.match: same match as route "a" on the same listener',
    ]);
    expect(check({ a, b: { ...a, match: { pathPrefix: '/x', headers: [{ name: 'x-a', exact: '2' }] } } })).toEqual([]);
    expect(check({ a, b: { ...a, match: { pathPrefix: '/x' } } })).toEqual([]);
  });

  it('wants exactly one kind of value match, a regex that compiles, and ignoreCase only for exact and prefix', () => {
    const route = (h: unknown) => ({ r: { match: { headers: [h] }, pools: [{ pool: 'p' }] } });
    expect(check(route({ name: 'x' }))).toEqual(['routes.r.match.headers[0]: needs one of exact, prefix, regex, present']);
    expect(check(route({ name: 'x', exact: 'a', prefix: 'b' }))).toEqual([
      'routes.r.match.headers[0]: give one of exact, prefix, regex, present, not exact and prefix',
    ]);
    expect(check(route({ name: 'x', regex: '(' }))[0]).toMatch(/^routes\.r\.match\.headers\[0\]\.regex: does not compile/);
    expect(check(route({ name: 'x', present: true, ignoreCase: true }))).toEqual(['routes.r.match.headers[0].ignoreCase: only applies to exact and prefix']);
  });

  it('keeps framing, connection and Host headers out of header edits', () => {
    expect(check({ r: { match: {}, pools: [{ pool: 'p' }], requestHeaders: { set: { 'Content-Length': '1' } } } })).toEqual([
      'routes.r.requestHeaders: "Content-Length" cannot be edited: the proxy sets it',
    ]);
    expect(check({ r: { match: {}, pools: [{ pool: 'p' }], responseHeaders: { remove: ['transfer-encoding'] } } })).toHaveLength(1);
    expect(check({ r: { match: {}, pools: [{ pool: 'p' }], requestHeaders: { remove: ['host'] } } })).toHaveLength(1);
  });

  it('wants pools unless the route redirects, and none when it does', () => {
    expect(check({ r: { match: {} } })).toEqual(['routes.r.pools: must list at least one pool (or the route must redirect)']);
    expect(check({ r: { match: {}, redirect: { scheme: 'https' } } })).toEqual([]);
    expect(check({ r: { match: {}, pools: [{ pool: 'p' }], redirect: {} } })).toEqual(['routes.r.pools: a route that redirects has no pools']);
    expect(check({ r: { match: {}, redirect: { path: '/a', pathPrefix: '/b' } } })).toEqual([
      'routes.r.redirect.pathPrefix: give path or pathPrefix, not both',
    ]);
  });
});

describe('header edits and redirects', () => {
  it('removes, then sets, then adds', () => {
    const rules = compileHeaderRules({ remove: ['X-Internal'], set: { 'x-env': 'prod' }, add: { via: 'lb' } })!;
    const headers = ['x-internal', 'secret', 'X-Env', 'dev', 'via', 'cdn', 'accept', '*/*'];
    applyHeaderRules(headers, rules);
    expect(headers).toEqual(['via', 'cdn', 'accept', '*/*', 'x-env', 'prod', 'via', 'lb']);
  });

  it("builds the Location from the request with the route's parts replaced", () => {
    const r = (x: Record<string, unknown>) => ({ status: 301 as const, stripQuery: false, ...x });
    expect(redirectLocation(r({ scheme: 'https' }), '/', 'example.com', '/a/b?q=1')).toBe('https://example.com/a/b?q=1');
    expect(redirectLocation(r({ pathPrefix: '/new' }), '/old', 'example.com:8080', '/old/x?q')).toBe('http://example.com:8080/new/x?q');
    expect(redirectLocation(r({ host: 'www.example.com', stripQuery: true }), '/', 'example.com:8080', '/p?q')).toBe('http://www.example.com/p');
    expect(redirectLocation(r({ port: 8443, scheme: 'https', path: '/login' }), '/', 'example.com:80', '/x')).toBe('https://example.com:8443/login');
  });
});
