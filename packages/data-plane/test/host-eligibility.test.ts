import { describe, expect, it } from 'vitest';
import type { Config } from '@lb/shared';
import { HealthStore } from '../src/health/health-store.js';
import { HostEligibility, slowStartFactor } from '../src/health/host-eligibility.js';
import { DataPlaneMetrics } from '../src/metrics.js';
import { OutlierDetector } from '../src/outlier/outlier-detector.js';
import { compileRoutingTable } from '../src/routing/routing-table.js';
import { EMPTY_PICK_CONTEXT } from '../src/balancer/balancer.js';
import { requestEnded, requestStarted, type BackendRuntime } from '../src/balancer/host.js';
import { UpstreamPools } from '../src/upstream/upstream-pools.js';

function setup(pool: Partial<Config['pools'][string]>, ids = ['a', 'b', 'c', 'd'], random: () => number = () => 0) {
  let now = 0;
  const clock = { now: () => now };
  const health = new HealthStore();
  const outliers = new OutlierDetector({ clock, onChange: () => undefined, defer: (fn) => fn() });
  const eligibility = new HostEligibility({ health, outliers, clock });
  const upstreams = new UpstreamPools();
  const metrics = new DataPlaneMetrics({ defaultMetrics: false });
  const config = (members: string[]): Config => ({
    pools: {
      web: {
        algorithm: 'weighted_round_robin',
        backends: members.map((id, i) => ({ id, address: `10.0.0.${i + 1}:80`, weight: 1, state: 'active' as const })),
        ...pool,
      },
    },
    routes: {},
  });
  let table = compileRoutingTable({ version: 1, config: config(ids) }, { upstreams, metrics, random, hosts: eligibility.hostsFor });
  eligibility.adopt(table);
  const held: BackendRuntime[] = [];
  /** n picks; with `hold`, each picked request stays in flight (what least-load algorithms balance) until the next call. */
  const picks = (n: number, hold = false) => {
    for (const rt of held.splice(0)) requestEnded(rt);
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const h = table.pools.get('web')!.balancer.pick(EMPTY_PICK_CONTEXT);
      if (hold && h !== undefined) {
        requestStarted(h.runtime);
        held.push(h.runtime);
      }
      const id = h?.id ?? 'none';
      seen[id] = (seen[id] ?? 0) + 1;
    }
    return seen;
  };
  const health1 = (id: string, status: string, revision: number) =>
    eligibility.onHealth(health.apply({ revision, nonce: '', full: false, backends: [{ pool: 'web', backendId: id, status, sinceUnixMs: 0 }] }));
  const apply = (members: string[]) => {
    table = compileRoutingTable({ version: 2, config: config(members) }, { upstreams, metrics, random, previous: table, hosts: eligibility.hostsFor });
    eligibility.adopt(table);
  };
  return { eligibility, picks, health1, apply, advance: (ms: number) => (now += ms), close: () => (eligibility.close(), upstreams.closeAll()) };
}

describe('HostEligibility', () => {
  it('takes unhealthy backends out and puts them back (unknown stays routable)', async () => {
    const s = setup({});
    s.health1('b', 'unhealthy', 1);
    expect(Object.keys(s.picks(40)).sort()).toEqual(['a', 'c', 'd']);
    s.health1('b', 'healthy', 2);
    expect(Object.keys(s.picks(40)).sort()).toEqual(['a', 'b', 'c', 'd']);
    await s.close();
  });

  it('routes across every active backend when the healthy share falls below panicThresholdPercent', async () => {
    const s = setup({ panicThresholdPercent: 50 });
    s.health1('a', 'unhealthy', 1);
    s.health1('b', 'unhealthy', 2);
    expect(s.eligibility.describe().web).toMatchObject({ eligible: 2, panic: false });
    s.health1('c', 'unhealthy', 3);
    expect(s.eligibility.describe().web).toMatchObject({ eligible: 1, panic: true });
    expect(Object.keys(s.picks(40)).sort()).toEqual(['a', 'b', 'c', 'd']);
    await s.close();
  });

  it.each(['round_robin', 'random', 'least_connections'] as const)('ramps an added backend under %s too, which ignores weights', async (algorithm) => {
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    const s = setup({ slowStartMs: 10_000, algorithm }, ['a', 'b'], random);
    s.apply(['a', 'b', 'c']);
    expect(s.eligibility.describe().web!.ramping).toEqual(['c']);
    // Shares 1, 1 and 0.1 at the start of the ramp: c gets about 0.1 / 2.1 of the picks.
    const hold = algorithm === 'least_connections';
    const early = (s.picks(4200, hold).c ?? 0) / 4200;
    s.advance(10_000);
    s.health1('a', 'healthy', 1); // any rebuild recomputes the weights
    const late = (s.picks(3000, hold).c ?? 0) / 3000;
    expect(early).toBeCloseTo(0.1 / 2.1, 1);
    expect(early).toBeLessThan(0.08);
    expect(late).toBeCloseTo(1 / 3, 1);
    await s.close();
  });

  it('ramps an added backend from 10% to full weight over slowStartMs', async () => {
    const s = setup({ slowStartMs: 10_000 }, ['a', 'b']);
    s.apply(['a', 'b', 'c']);
    expect(s.eligibility.describe().web!.ramping).toEqual(['c']);
    const early = s.picks(2100).c ?? 0;
    s.advance(10_000);
    s.health1('a', 'healthy', 1); // any rebuild recomputes the weights
    const late = s.picks(3000).c ?? 0;
    expect(early / 2100).toBeCloseTo(0.1 / 2.1, 2);
    expect(late / 3000).toBeCloseTo(1 / 3, 2);
    expect(s.eligibility.describe().web!.ramping).toEqual([]);
    await s.close();
  });

  it("computes Envoy's linear factor with a 10% floor", () => {
    expect(slowStartFactor(0, 1000)).toBe(0.1);
    expect(slowStartFactor(500, 1000)).toBe(0.5);
    expect(slowStartFactor(2000, 1000)).toBe(1);
    expect(slowStartFactor(10, 0)).toBe(1);
  });
});
