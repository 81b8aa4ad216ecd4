import { describe, expect, it } from 'vitest';
import { EMPTY_PICK_CONTEXT } from '../src/balancer/balancer.js';
import { EarliestDeadlineFirst } from '../src/balancer/edf.js';
import { createBalancer } from '../src/balancer/factory.js';
import { BackendRuntime, rawHeaderNumber, recordLoad } from '../src/balancer/host.js';
import { ResourceBased } from '../src/balancer/resource-based.js';
import { counts, fixedClock, hosts, pickIds, range, seeded } from './balancer-helpers.js';

const N = 20_000;

function shares(ids: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, n] of counts(ids)) out.set(k, n / ids.length);
  return out;
}

describe('random', () => {
  it('spreads uniformly, ignoring weights (within 3 points over 20,000 picks)', () => {
    const b = createBalancer({ algorithm: 'random' }, hosts(['a', 'b', 'c', 'd'], [10, 1, 1, 1]), { random: seeded(1), clock: fixedClock });
    for (const [, s] of shares(pickIds(b, N, EMPTY_PICK_CONTEXT))) expect(Math.abs(s - 0.25)).toBeLessThan(0.03);
  });
});

describe('weighted_random', () => {
  it('follows the weights (within 3 points over 20,000 picks)', () => {
    const b = createBalancer({ algorithm: 'weighted_random' }, hosts(['a', 'b', 'c'], [5, 3, 2]), { random: seeded(2), clock: fixedClock });
    const s = shares(pickIds(b, N, EMPTY_PICK_CONTEXT));
    expect(Math.abs(s.get('a')! - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(s.get('b')! - 0.3)).toBeLessThan(0.03);
    expect(Math.abs(s.get('c')! - 0.2)).toBeLessThan(0.03);
  });

  it('maps the edges of [0, 1) onto the first and last backend', () => {
    expect(
      createBalancer({ algorithm: 'weighted_random' }, hosts(['a', 'b'], [1, 3]), { random: () => 0, clock: fixedClock }).pick(EMPTY_PICK_CONTEXT)?.id,
    ).toBe('a');
    expect(
      createBalancer({ algorithm: 'weighted_random' }, hosts(['a', 'b'], [1, 3]), { random: () => 0.9999999, clock: fixedClock }).pick(EMPTY_PICK_CONTEXT)?.id,
    ).toBe('b');
  });
});

describe('weighted_round_robin on large pools (earliest deadline first)', () => {
  it('gives exact shares and never bursts a heavy backend', () => {
    const b = new EarliestDeadlineFirst(['a', 'b', 'c'], [5, 1, 1]);
    const seq = Array.from({ length: 70 }, () => b.pick()!);
    expect(counts(seq)).toEqual(
      new Map([
        ['a', 50],
        ['b', 10],
        ['c', 10],
      ]),
    );
    // Each period of 7 holds one b and one c, and a never runs longer than the 5 of its share.
    for (let p = 0; p < 70; p += 7)
      expect(
        seq
          .slice(p, p + 7)
          .sort()
          .join(''),
      ).toBe('aaaaabc');
    expect(seq.join('')).not.toContain('aaaaaa');
  });

  it('is what the factory uses for 10,000 backends with uneven weights', () => {
    const ids = range('h', 10_000);
    const b = createBalancer(
      { algorithm: 'weighted_round_robin' },
      hosts(
        ids,
        ids.map((_, i) => 1 + (i % 7)),
      ),
      { random: seeded(3), clock: fixedClock },
    );
    expect(b).toBeInstanceOf(EarliestDeadlineFirst);
    const total = ids.reduce((s, _, i) => s + 1 + (i % 7), 0);
    const c = counts(pickIds(b, total, EMPTY_PICK_CONTEXT));
    for (let i = 0; i < 50; i++) expect(c.get(`h${i}`)).toBe(1 + (i % 7));
  });
});

describe('resource_based', () => {
  it('reads the load header from raw response headers, case-insensitively', () => {
    const raw = ['Content-Type', 'text/plain', 'X-Backend-Load', '0.75'];
    expect(rawHeaderNumber(raw, 'x-backend-load')).toBe(0.75);
    expect(rawHeaderNumber(raw, 'x-other')).toBeNaN();
  });

  it('smooths reports over the decay window and clamps them to 0..1', () => {
    const rt = new BackendRuntime();
    recordLoad(rt, 0.2, 0, 1000);
    expect(rt.load).toBe(0.2);
    recordLoad(rt, 7, 1000, 1000); // clamped to 1, weighted 1 - e^-1 after one window
    expect(rt.load).toBeCloseTo(0.2 * Math.exp(-1) + 1 - Math.exp(-1), 9);
    recordLoad(rt, Number.NaN, 2000, 1000);
    recordLoad(rt, -1, 2000, 1000);
    expect(rt.loadSamples).toBe(2); // garbage is ignored
  });

  it('shifts traffic away from a loaded backend, but never below minWeightPercent', () => {
    const hs = hosts(['a', 'b']);
    const b = createBalancer({ algorithm: 'resource_based', resourceBased: { header: 'x-backend-load', decayMs: 1000, minWeightPercent: 10 } }, hs, {
      random: seeded(4),
      clock: fixedClock,
    });
    expect(Math.abs(shares(pickIds(b, N, EMPTY_PICK_CONTEXT)).get('a')! - 0.5)).toBeLessThan(0.03);
    recordLoad(hs[0]!.runtime, 0.5, 0, 1000); // a: weight × 0.5
    expect(Math.abs(shares(pickIds(b, N, EMPTY_PICK_CONTEXT)).get('a')! - 1 / 3)).toBeLessThan(0.03);
    recordLoad(hs[1]!.runtime, 1, 0, 1000); // b saturated: floor of 10%
    expect((b as ResourceBased<(typeof hs)[0]>).effectiveWeight(1)).toBeCloseTo(0.1, 9);
    expect(Math.abs(shares(pickIds(b, N, EMPTY_PICK_CONTEXT)).get('b')! - 0.1 / 0.6)).toBeLessThan(0.03);
  });

  it('starts a rebuilt balancer from the loads already reported', () => {
    const hs = hosts(['a', 'b']);
    recordLoad(hs[0]!.runtime, 0.9, 0, 1000);
    const b = new ResourceBased(hs, 0.1, seeded(1));
    expect(b.effectiveWeight(0)).toBeCloseTo(0.1, 9);
    expect(b.effectiveWeight(1)).toBe(1);
  });
});
