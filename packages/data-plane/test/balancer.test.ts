import { describe, expect, it } from 'vitest';
import { ALGORITHMS } from '@lb/shared';
import { EMPTY_PICK_CONTEXT, EmptyBalancer } from '../src/balancer/balancer.js';
import { counts, fixedClock, hosts, pickIds, request } from './balancer-helpers.js';
import { createBalancer } from '../src/balancer/factory.js';
import { RoundRobin } from '../src/balancer/round-robin.js';
import { SmoothWeightedRoundRobin } from '../src/balancer/smooth-weighted-round-robin.js';

const zero = () => 0;

function picks<T>(b: { pick(ctx: typeof EMPTY_PICK_CONTEXT): T | undefined }, n: number): (T | undefined)[] {
  return Array.from({ length: n }, () => b.pick(EMPTY_PICK_CONTEXT));
}

describe('SmoothWeightedRoundRobin', () => {
  const nginx = ['a', 'a', 'b', 'a', 'c', 'a', 'a'];

  it('interleaves 5:1:1 exactly like nginx, period after period (precomputed schedule)', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b', 'c'], [5, 1, 1], { random: zero });
    expect(picks(b, 21)).toEqual([...nginx, ...nginx, ...nginx]);
  });

  it('gives the same sequence when running the algorithm live (large n·W)', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b', 'c'], [5, 1, 1], { maxScheduleWork: 0 });
    expect(picks(b, 21)).toEqual([...nginx, ...nginx, ...nginx]);
  });

  it('reduces weights by their gcd without changing the sequence', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b', 'c'], [50, 10, 10], { random: zero });
    expect(picks(b, 7)).toEqual(nginx);
  });

  it('starts a precomputed schedule at a random offset but keeps its order', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b', 'c'], [5, 1, 1], { random: () => 0.3 }); // floor(0.3*7) = 2
    expect(picks(b, 7)).toEqual([...nginx.slice(2), ...nginx.slice(0, 2)]);
  });

  it('never picks weight-0 items and answers undefined when nothing is left', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b'], [0, 3], { random: zero });
    expect(picks(b, 4)).toEqual(['b', 'b', 'b', 'b']);
    expect(new SmoothWeightedRoundRobin<string>([], []).pick()).toBeUndefined();
    expect(new SmoothWeightedRoundRobin(['a'], [0]).pick()).toBeUndefined();
  });

  it('rotates equal weights like round robin', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b', 'c'], [2, 2, 2], { random: zero });
    expect(picks(b, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('sends each item exactly its share over a period, for uneven weights', () => {
    const weights = [7, 3, 1, 13, 2];
    const items = ['a', 'b', 'c', 'd', 'e'];
    for (const options of [{ random: zero }, { maxScheduleWork: 0 }]) {
      const b = new SmoothWeightedRoundRobin(items, weights, options);
      const counts = new Map<string, number>();
      for (const x of picks(b, 26 * 10)) counts.set(x!, (counts.get(x!) ?? 0) + 1);
      expect(items.map((i) => counts.get(i))).toEqual(weights.map((w) => w * 10));
    }
  });

  it('never sends a heavy item more than its share in a row (no bursts)', () => {
    const b = new SmoothWeightedRoundRobin(['a', 'b'], [1, 1000], { random: zero });
    const seq = picks(b, 1001);
    expect(seq.filter((x) => x === 'a')).toHaveLength(1);
    // The light item lands mid-period, not at either end.
    const at = seq.indexOf('a');
    expect(at).toBeGreaterThan(100);
    expect(at).toBeLessThan(900);
  });
});

describe('RoundRobin', () => {
  it('rotates in order from a random start', () => {
    expect(picks(new RoundRobin(['a', 'b', 'c'], zero), 7)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    expect(picks(new RoundRobin(['a', 'b', 'c'], () => 0.5), 4)).toEqual(['b', 'c', 'a', 'b']);
  });

  it('answers undefined when empty', () => {
    expect(new RoundRobin([], zero).pick()).toBeUndefined();
    expect(new EmptyBalancer().pick()).toBeUndefined();
  });
});

describe('picks for retries', () => {
  it('take turns of their own: fresh picks keep their rotation however many retries run between them', () => {
    const rr = new RoundRobin(['a', 'b', 'c'], zero);
    const fresh: (string | undefined)[] = [];
    const retries: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) {
      fresh.push(rr.pick());
      retries.push(rr.pickForRetry(), rr.pickForRetry());
    }
    expect(fresh).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    expect(retries).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
    const swrr = new SmoothWeightedRoundRobin(['a', 'b', 'c'], [5, 1, 1], { random: zero });
    const weighted: (string | undefined)[] = [];
    for (let i = 0; i < 7; i++) {
      weighted.push(swrr.pick());
      swrr.pickForRetry();
    }
    expect(weighted).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });
});

describe('createBalancer', () => {
  const items = hosts(['a', 'b', 'c'], [5, 1, 1]);
  const deps = { random: zero, clock: fixedClock };

  it('round_robin ignores weights', () => {
    expect(pickIds(createBalancer({ algorithm: 'round_robin' }, items, deps), 3, EMPTY_PICK_CONTEXT)).toEqual(['a', 'b', 'c']);
  });

  it('weighted_round_robin is smooth: 5:1:1 gives a a b a c a a', () => {
    expect(pickIds(createBalancer({ algorithm: 'weighted_round_robin' }, items, deps), 14, EMPTY_PICK_CONTEXT)).toEqual([...'aabacaa', ...'aabacaa']);
  });

  it('weighted_round_robin scales fractional (slow-start) weights instead of losing them', () => {
    const b = createBalancer({ algorithm: 'weighted_round_robin' }, hosts(['a', 'b'], [1, 0.5]), deps);
    expect(counts(pickIds(b, 30, EMPTY_PICK_CONTEXT))).toEqual(
      new Map([
        ['a', 20],
        ['b', 10],
      ]),
    );
  });

  it('an empty pool, or one whose hosts all weigh 0, gets a balancer that answers none', () => {
    expect(createBalancer({ algorithm: 'weighted_round_robin' }, [], deps).pick(EMPTY_PICK_CONTEXT)).toBeUndefined();
    expect(createBalancer({ algorithm: 'p2c' }, hosts(['a'], [0]), deps).pick(EMPTY_PICK_CONTEXT)).toBeUndefined();
  });

  it('builds every algorithm, and each picks one of the hosts', () => {
    for (const algorithm of ALGORITHMS) {
      const b = createBalancer({ algorithm }, items, deps);
      expect(b.size, algorithm).toBe(3);
      expect(['a', 'b', 'c'], algorithm).toContain(b.pick(request({ ip: '10.0.0.1' }))?.id);
    }
  });

  it('moves the load-tracking claim to the newest balancer over the same runtimes', () => {
    const hs = hosts(['a', 'b']);
    const first = createBalancer({ algorithm: 'least_connections' }, hs, deps);
    expect(hs[0]!.runtime.tracker).toBe(first);
    createBalancer({ algorithm: 'round_robin' }, hs, deps);
    expect(hs[0]!.runtime.tracker).toBeNull();
  });
});
