// The indexed route lookup (RouteList + wildcard suffix map) must answer exactly like the plain
// rule it replaces: host tier first (exact, longer wildcard suffix, any), then the longest path
// prefix, then the name. Checked against a straightforward reference on many random tables.
import type { Config } from '@lb/shared';
import type { Upstream } from '../src/upstream/upstream.js';
import { describe, expect, it } from 'vitest';
import { DataPlaneMetrics } from '../src/metrics.js';
import { compileRoutingTable, normalizeHost } from '../src/routing/routing-table.js';

const upstreams = { acquire: (address: string) => ({ address }) as unknown as Upstream };
const metrics = new DataPlaneMetrics({ defaultMetrics: false });
const pools: Config['pools'] = {
  p: { algorithm: 'round_robin', backends: [{ id: 'b', address: '10.0.0.1:80', weight: 1, state: 'active' }] },
} as Config['pools'];

interface Spec {
  name: string;
  host: string | undefined;
  prefix: string;
}

/** The matching rule written the obvious way: every route checked, best one kept. */
function reference(routes: Spec[], host: string | undefined, url: string): string | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const tier = (r: Spec): number | undefined => {
    if (r.host === undefined) return 2_000;
    if (r.host.startsWith('*.')) {
      const suffix = r.host.slice(1);
      return host !== undefined && host.length > suffix.length && host.endsWith(suffix) ? 1_000 - r.host.length : undefined;
    }
    return r.host === host ? 0 : undefined;
  };
  // Hosts with exact routes see wildcard and any-host routes too; others see their longest
  // matching wildcard's group (every wildcard the host matches) and the any-host routes.
  let best: { spec: Spec; tier: number } | undefined;
  for (const r of routes) {
    const t = tier(r);
    if (t === undefined || !path.startsWith(r.prefix)) continue;
    if (
      best === undefined ||
      t < best.tier ||
      (t === best.tier && (r.prefix.length > best.spec.prefix.length || (r.prefix.length === best.spec.prefix.length && r.name < best.spec.name)))
    ) {
      best = { spec: r, tier: t };
    }
  }
  return best?.spec.name;
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('indexed route lookup', () => {
  it('matches the reference rule on random tables with many routes per tier', () => {
    const hosts = ['a.example.com', 'b.example.com', 'x.eu.example.com', 'y.x.eu.example.com', 'example.com', 'other.org', 'deep.a.example.com'];
    const wild = ['*.example.com', '*.eu.example.com', '*.x.eu.example.com', '*.org'];
    const segments = ['', 'a', 'ab', 'abc', 'b', 'v1', 'v2', 'static', 'img'];
    for (let seed = 1; seed <= 40; seed++) {
      const random = rng(seed);
      const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
      const specs: Spec[] = [];
      const n = 5 + Math.floor(random() * 60);
      for (let i = 0; i < n; i++) {
        const kind = random();
        const host = kind < 0.4 ? pick(hosts) : kind < 0.7 ? pick(wild) : undefined;
        const depth = Math.floor(random() * 3);
        let prefix = '/';
        for (let d = 0; d < depth; d++) prefix += `${pick(segments)}${random() < 0.5 ? '/' : ''}`;
        specs.push({ name: `r${String(i).padStart(2, '0')}`, host, prefix });
      }
      const routes: Config['routes'] = {};
      for (const s of specs)
        routes[s.name] = {
          match: { ...(s.host === undefined ? {} : { host: s.host }), pathPrefix: s.prefix },
          pools: [{ pool: 'p', weight: 1 }],
        } as Config['routes'][string];
      const table = compileRoutingTable({ version: 1, config: { pools, routes } as Config }, { upstreams, metrics, random: () => 0 });
      for (let k = 0; k < 200; k++) {
        const host = random() < 0.1 ? undefined : pick([...hosts, 'nomatch.net', 'q.a.example.com']);
        let url = '/';
        const depth = Math.floor(random() * 4);
        for (let d = 0; d < depth; d++) url += `${pick(segments)}${random() < 0.6 ? '/' : ''}`;
        if (random() < 0.3) url += `?q=${pick(segments)}/${pick(segments)}`;
        const got = table.match(host === undefined ? undefined : normalizeHost(host), url)?.name;
        expect(got, `seed ${seed}: ${host} ${url}`).toBe(reference(specs, host, url));
      }
    }
  });

  it('never lets a prefix match inside the query string', () => {
    const routes: Config['routes'] = {};
    for (let i = 0; i < 20; i++) routes[`p${i}`] = { match: { pathPrefix: `/x${i}` }, pools: [{ pool: 'p', weight: 1 }] } as Config['routes'][string];
    routes.q = { match: { pathPrefix: '/a?b' }, pools: [{ pool: 'p', weight: 1 }] } as Config['routes'][string];
    const table = compileRoutingTable({ version: 1, config: { pools, routes } as Config }, { upstreams, metrics, random: () => 0 });
    expect(table.match(undefined, '/a?b=1')?.name).toBeUndefined();
    expect(table.match(undefined, '/x7/y?z')?.name).toBe('p7');
    expect(table.match(undefined, '/x1?x12')?.name).toBe('p1');
  });
});
