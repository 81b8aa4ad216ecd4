import type { Config } from '@lb/shared';
import type { Upstream } from '../src/upstream/upstream.js';
import { describe, expect, it } from 'vitest';
import { DataPlaneMetrics } from '../src/metrics.js';
import { compileRoutingTable, normalizeHost, pickBackend, type RouteTarget } from '../src/routing/routing-table.js';

const upstreams = { acquire: (address: string) => ({ address }) as unknown as Upstream };
const metrics = new DataPlaneMetrics({ defaultMetrics: false });

function pool(...addresses: string[]) {
  return { algorithm: 'round_robin' as const, backends: addresses.map((address, i) => ({ id: `b${i}`, address, weight: 1, state: 'active' as const })) };
}

function table(routes: Config['routes'], pools: Config['pools'] = { p: pool('10.0.0.1:80') }) {
  return compileRoutingTable({ version: 1, config: { pools, routes } }, { upstreams, metrics, random: () => 0 });
}

const to = (match: { host?: string; pathPrefix?: string }) => ({ match, pools: [{ pool: 'p', weight: 1 }] });

describe('normalizeHost', () => {
  it('lower-cases and drops the port and a trailing dot', () => {
    expect(normalizeHost('Example.COM:8080')).toBe('example.com');
    expect(normalizeHost('example.com.')).toBe('example.com');
    expect(normalizeHost('[::1]:8080')).toBe('[::1]');
    expect(normalizeHost('10.0.0.1')).toBe('10.0.0.1');
  });
});

describe('RoutingTable.match', () => {
  const t = table({
    exact: to({ host: 'api.example.com' }),
    exactV1: to({ host: 'api.example.com', pathPrefix: '/v1' }),
    wild: to({ host: '*.example.com' }),
    deeper: to({ host: '*.eu.example.com' }),
    any: to({}),
    anyStatic: to({ pathPrefix: '/static' }),
    anyStaticImg: to({ pathPrefix: '/static/img' }),
  });
  const m = (host: string | undefined, url: string) => t.match(host === undefined ? undefined : normalizeHost(host), url)?.name;

  it('prefers an exact host, then the longest path prefix', () => {
    expect(m('api.example.com', '/v1/users')).toBe('exactV1');
    expect(m('api.example.com', '/v2')).toBe('exact');
    expect(m('API.Example.com:8443', '/v1')).toBe('exactV1');
  });

  it('falls back to wildcards (longest suffix first), then to hostless routes', () => {
    expect(m('www.example.com', '/')).toBe('wild');
    expect(m('a.b.example.com', '/')).toBe('wild');
    expect(m('x.eu.example.com', '/')).toBe('deeper');
    expect(m('example.com', '/static/img/a.png')).toBe('anyStaticImg');
    expect(m('example.com', '/static/x')).toBe('anyStatic');
    expect(m('other.org', '/')).toBe('any');
    expect(m(undefined, '/static')).toBe('anyStatic');
  });

  it('is a plain string prefix on the path, ignoring the query', () => {
    expect(m('other.org', '/staticx')).toBe('anyStatic');
    expect(m('other.org', '/stat?ic')).toBe('any');
    expect(m('other.org', '/static?img')).toBe('anyStatic');
  });

  it('finds no route when nothing matches', () => {
    const narrow = table({ only: to({ host: 'a.example.com', pathPrefix: '/api' }), w: to({ host: '*.example.org' }) });
    expect(narrow.match('a.example.com', '/other')).toBeUndefined();
    expect(narrow.match('b.example.com', '/api')).toBeUndefined();
    expect(narrow.match(undefined, '/api')).toBeUndefined();
    expect(narrow.match('example.org', '/')).toBeUndefined(); // `*.example.org` needs a label in front
    expect(narrow.match('x.example.org', '/')?.name).toBe('w');
  });

  it('lets an exact host route fall through to a matching wildcard before the catch-all', () => {
    const t2 = table({ e: to({ host: 'a.example.com', pathPrefix: '/api' }), w: to({ host: '*.example.com', pathPrefix: '/' }), any: to({}) });
    expect(t2.match('a.example.com', '/other')?.name).toBe('w');
  });
});

describe('compileRoutingTable', () => {
  it('routes only to active backends and splits traffic across pools by weight', () => {
    const t = compileRoutingTable(
      {
        version: 3,
        config: {
          pools: {
            blue: {
              algorithm: 'round_robin',
              backends: [
                { id: 'x', address: '10.0.0.1:80', weight: 1, state: 'active' },
                { id: 'y', address: '10.0.0.2:80', weight: 1, state: 'draining' },
                { id: 'z', address: '10.0.0.3:80', weight: 1, state: 'disabled' },
              ],
            },
            green: pool('10.0.1.1:80'),
            off: pool('10.0.2.1:80'),
          },
          routes: {
            r: {
              match: {},
              pools: [
                { pool: 'blue', weight: 3 },
                { pool: 'green', weight: 1 },
                { pool: 'off', weight: 0 },
              ],
            },
          },
        },
      },
      { upstreams, metrics, random: () => 0 },
    );
    const route = t.match(undefined, '/')!;
    const out: { target: RouteTarget | undefined } = { target: undefined };
    const seen = Array.from({ length: 8 }, () => {
      const b = pickBackend(route, out)!;
      return `${out.target!.pool.name}/${b.id}`;
    });
    expect(seen).toEqual(['blue/x', 'blue/x', 'green/b0', 'blue/x', 'blue/x', 'blue/x', 'green/b0', 'blue/x']);
    expect(t.addresses()).toEqual(new Set(['10.0.0.1:80', '10.0.1.1:80', '10.0.2.1:80']));
    expect(t.pools.get('blue')!.backends.map((b) => b.upstream !== undefined)).toEqual([true, false, false]);
  });

  it('falls back to another pool of the route when the chosen one has no active backend', () => {
    const t = table(
      {
        r: {
          match: {},
          pools: [
            { pool: 'empty', weight: 100 },
            { pool: 'p', weight: 1 },
          ],
        },
      },
      { empty: { algorithm: 'round_robin', backends: [] }, p: pool('10.0.0.1:80') },
    );
    const out: { target: RouteTarget | undefined } = { target: undefined };
    for (let i = 0; i < 5; i++) expect(pickBackend(t.match(undefined, '/')!, out)?.address).toBe('10.0.0.1:80');
    const none = table({ r: { match: {}, pools: [{ pool: 'empty', weight: 1 }] } }, { empty: { algorithm: 'round_robin', backends: [] } });
    expect(pickBackend(none.match(undefined, '/')!, out)).toBeUndefined();
    expect(out.target).toBeUndefined();
  });

  it('takes unchanged pools over from the previous table, balancer position included', () => {
    const config: Config = { pools: { p: pool('10.0.0.1:80', '10.0.0.2:80'), q: pool('10.0.0.3:80') }, routes: { r: to({}) } };
    const first = compileRoutingTable({ version: 1, config }, { upstreams, metrics, random: () => 0 });
    const changed: Config = { ...config, pools: { ...config.pools, q: pool('10.0.0.4:80') } };
    const second = compileRoutingTable({ version: 2, config: changed }, { upstreams, metrics, random: () => 0, previous: first });
    expect(second.pools.get('p')).toBe(first.pools.get('p'));
    expect(second.pools.get('q')).not.toBe(first.pools.get('q'));
  });
});

describe('L4 listeners', () => {
  it('take only the routes that name them, matching the SNI as a host; routes without listeners stay HTTP', () => {
    const t = compileRoutingTable(
      {
        version: 1,
        config: {
          pools: { p: pool('10.0.0.1:80') },
          routes: { http: to({}), sni: { ...to({ host: '*.example.com' }), listeners: ['tls'] }, fallback: { ...to({}), listeners: ['tls'] } },
          listeners: { tls: { port: 8443, protocol: 'tls-passthrough' }, tcp: { port: 5432, protocol: 'tcp' } },
        },
      },
      { upstreams, metrics, random: () => 0 },
    );
    expect(t.match('a.example.com', '/', undefined, 'tls')?.name).toBe('sni');
    expect(t.match('other.org', '/', undefined, 'tls')?.name).toBe('fallback');
    expect(t.match(undefined, '/', undefined, 'tcp')).toBeUndefined();
    expect(t.match(undefined, '/')?.name).toBe('http');
  });
});
