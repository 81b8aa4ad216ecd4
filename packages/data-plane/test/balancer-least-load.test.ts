import { describe, expect, it } from 'vitest';
import { EMPTY_PICK_CONTEXT } from '../src/balancer/balancer.js';
import { createBalancer } from '../src/balancer/factory.js';
import { BackendRuntime, recordLatency, requestEnded, requestStarted, type Host } from '../src/balancer/host.js';
import { counts, fixedClock, hosts, range, seeded, type TestHost } from './balancer-helpers.js';

function deps(seed = 1) {
  return { random: seeded(seed), clock: fixedClock };
}

/** Picks and starts `n` requests without finishing any: what concurrent load looks like. */
function startMany(b: { pick(ctx: typeof EMPTY_PICK_CONTEXT): TestHost | undefined }, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = b.pick(EMPTY_PICK_CONTEXT)!;
    requestStarted(h.runtime);
    out.push(h.id);
  }
  return out;
}

/**
 * A simple closed-loop simulation: `concurrency` requests always in flight, host i takes
 * `serviceMs[i]` to answer. Returns how many requests each host served.
 */
function simulate(
  algorithm: 'least_connections' | 'p2c' | 'least_response_time' | 'round_robin',
  serviceMs: number[],
  total: number,
  concurrency: number,
): number[] {
  const hs = hosts(range('h', serviceMs.length));
  const b = createBalancer({ algorithm }, hs, deps(7));
  const served = new Array<number>(serviceMs.length).fill(0);
  const finishing: { at: number; host: Host }[] = [];
  let now = 0;
  const dispatch = () => {
    const h = b.pick(EMPTY_PICK_CONTEXT)!;
    requestStarted(h.runtime);
    finishing.push({ at: now + serviceMs[hs.indexOf(h as TestHost)]!, host: h });
  };
  for (let i = 0; i < concurrency; i++) dispatch();
  for (let done = 0; done < total; done++) {
    finishing.sort((a, b) => a.at - b.at);
    const next = finishing.shift()!;
    now = next.at;
    const i = hs.indexOf(next.host as TestHost);
    recordLatency(next.host.runtime, serviceMs[i]!, now, 10_000);
    requestEnded(next.host.runtime);
    served[i]!++;
    dispatch();
  }
  return served;
}

describe('least_connections', () => {
  it('sends each request to the backend with the fewest in flight', () => {
    const b = createBalancer({ algorithm: 'least_connections' }, hosts(['a', 'b', 'c']), deps());
    const first = startMany(b, 3);
    expect(new Set(first)).toEqual(new Set(['a', 'b', 'c'])); // one each before anyone gets a second
    const again = startMany(b, 3);
    expect(new Set(again)).toEqual(new Set(['a', 'b', 'c']));
  });

  it('goes back to a backend as soon as its requests finish', () => {
    const hs = hosts(['a', 'b', 'c']);
    const b = createBalancer({ algorithm: 'least_connections' }, hs, deps());
    startMany(b, 6); // 2 each
    requestEnded(hs[1]!.runtime);
    requestEnded(hs[1]!.runtime);
    expect(b.pick(EMPTY_PICK_CONTEXT)?.id).toBe('b');
  });

  it('breaks ties randomly, not always in favour of the first backend', () => {
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 40; seed++)
      firsts.add(createBalancer({ algorithm: 'least_connections' }, hosts(['a', 'b', 'c', 'd']), deps(seed)).pick(EMPTY_PICK_CONTEXT)!.id);
    expect(firsts).toEqual(new Set(['a', 'b', 'c', 'd']));
    // Sequential requests (never concurrent) keep tying: they still spread over every backend.
    const hs = hosts(['a', 'b', 'c', 'd']);
    const b = createBalancer({ algorithm: 'least_connections' }, hs, deps());
    const seen: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const h = b.pick(EMPTY_PICK_CONTEXT)!;
      requestStarted(h.runtime);
      requestEnded(h.runtime);
      seen.push(h.id);
    }
    for (const [, n] of counts(seen)) expect(n).toBeGreaterThan(800); // 1000 each on average
  });

  it('keeps in-flight counts across a rebuild over the same runtimes', () => {
    const runtimes = new Map([
      ['a', new BackendRuntime()],
      ['b', new BackendRuntime()],
    ]);
    const before = createBalancer({ algorithm: 'least_connections' }, hosts(['a', 'b'], [], runtimes), deps());
    requestStarted(before.pick(EMPTY_PICK_CONTEXT)!.runtime);
    const busy = [...runtimes].find(([, rt]) => rt.active === 1)![0];
    const after = createBalancer({ algorithm: 'least_connections' }, hosts(['a', 'b'], [], runtimes), deps(99));
    expect(after.pick(EMPTY_PICK_CONTEXT)!.id).not.toBe(busy);
    requestEnded(runtimes.get(busy)!); // finishing under the new balancer updates the new balancer
    expect(runtimes.get(busy)!.active).toBe(0);
  });

  it('sends less to a slow backend than round robin under concurrent load (simulation)', () => {
    const rr = simulate('round_robin', [10, 10, 100], 3000, 12);
    const lc = simulate('least_connections', [10, 10, 100], 3000, 12);
    expect(rr[2]! / 3000).toBeGreaterThan(0.3);
    expect(lc[2]! / 3000).toBeLessThan(0.2);
  });

  it('picks in well under a microsecond at 10,000 backends (O(log n) updates)', () => {
    const b = createBalancer({ algorithm: 'least_connections' }, hosts(range('h', 10_000)), deps());
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) requestStarted(b.pick(EMPTY_PICK_CONTEXT)!.runtime);
    expect((performance.now() - t0) / 20_000).toBeLessThan(0.02); // ms: a generous bound for CI
  });
});

describe('weighted_least_connections', () => {
  it('keeps in-flight counts proportional to weight: (active + 1) / weight', () => {
    const hs = hosts(['a', 'b', 'c'], [3, 2, 1]);
    const b = createBalancer({ algorithm: 'weighted_least_connections' }, hs, deps());
    const c = counts(startMany(b, 60));
    // Each pick goes to the smallest (active + 1) / weight, so after 60 starts the counts are 3:2:1 to within one request.
    expect(Math.abs(c.get('a')! - 30)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.get('b')! - 20)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.get('c')! - 10)).toBeLessThanOrEqual(1);
  });

  it('an idle pool prefers the heaviest backend', () => {
    expect(createBalancer({ algorithm: 'weighted_least_connections' }, hosts(['a', 'b', 'c'], [1, 5, 1]), deps()).pick(EMPTY_PICK_CONTEXT)?.id).toBe('b');
  });
});

describe('p2c', () => {
  it('of the two sampled backends, takes the one with the higher weight / (active + 1)^bias', () => {
    const hs = hosts(['a', 'b', 'c'], [1, 1, 1]);
    hs[0]!.runtime.active = 5;
    // random() = 0.1 → index 0 (a); then 0.4 × 2 → 0, shifted past a → b: a has 5 in flight, b none → b.
    const seq = [0.1, 0.4];
    let k = 0;
    const b = createBalancer({ algorithm: 'p2c' }, hs, { random: () => seq[k++ % 2]!, clock: fixedClock });
    expect(b.pick(EMPTY_PICK_CONTEXT)?.id).toBe('b');
    // bias 0 ignores load: equal weights tie and the first sample stays.
    k = 0;
    const flat = createBalancer({ algorithm: 'p2c', p2c: { bias: 0 } }, hs, { random: () => seq[k++ % 2]!, clock: fixedClock });
    expect(flat.pick(EMPTY_PICK_CONTEXT)?.id).toBe('a');
  });

  it('never compares a backend with itself, and a single backend is always picked', () => {
    expect(createBalancer({ algorithm: 'p2c' }, hosts(['only']), deps()).pick(EMPTY_PICK_CONTEXT)?.id).toBe('only');
    const hs = hosts(['a', 'b']);
    hs[0]!.runtime.active = 1;
    const b = createBalancer({ algorithm: 'p2c' }, hs, { random: () => 0, clock: fixedClock });
    expect(b.pick(EMPTY_PICK_CONTEXT)?.id).toBe('b'); // samples a and (skipping a) b
  });

  it('respects weights when idle: shares follow weights', () => {
    const b = createBalancer({ algorithm: 'p2c' }, hosts(['a', 'b', 'c', 'd'], [4, 1, 1, 1]), deps(3));
    const c = counts(Array.from({ length: 7000 }, () => b.pick(EMPTY_PICK_CONTEXT)!.id));
    // a wins every pairing it is in: 3 of the 6 pairs (both orders) → 50%.
    expect(c.get('a')! / 7000).toBeGreaterThan(0.45);
    expect(c.get('a')! / 7000).toBeLessThan(0.55);
  });

  it('sends less to a slow backend than round robin under concurrent load (simulation)', () => {
    const p = simulate('p2c', [10, 10, 100], 3000, 12);
    expect(p[2]! / 3000).toBeLessThan(0.2);
  });
});

describe('least_response_time', () => {
  it('scores peak-EWMA latency × (in flight + 1)', () => {
    const hs = hosts(['fast', 'slow']);
    recordLatency(hs[0]!.runtime, 10, 0, 10_000);
    recordLatency(hs[1]!.runtime, 55, 0, 10_000);
    const b = createBalancer({ algorithm: 'least_response_time' }, hs, deps());
    // fast: 10 × (n + 1) beats slow's 55 × 1 until fast has 5 in flight.
    expect(startMany(b, 5)).toEqual(['fast', 'fast', 'fast', 'fast', 'fast']);
    expect(b.pick(EMPTY_PICK_CONTEXT)?.id).toBe('slow');
  });

  it('peak-EWMA jumps to a slower sample at once and decays towards faster ones over the window', () => {
    const rt = new BackendRuntime();
    recordLatency(rt, 10, 0, 1000);
    recordLatency(rt, 100, 10, 1000);
    expect(rt.latencyMs).toBe(100);
    recordLatency(rt, 10, 1010, 1000); // one window later: weight e^-1 on the old value
    expect(rt.latencyMs).toBeCloseTo(100 * Math.exp(-1) + 10 * (1 - Math.exp(-1)), 6);
  });

  it('starts a new backend at the pool median instead of flooding it', () => {
    const runtimes = new Map<string, BackendRuntime>();
    const old = hosts(['a', 'b', 'c'], [], runtimes);
    for (const [i, ms] of [10, 20, 40].entries()) recordLatency(old[i]!.runtime, ms, 0, 10_000);
    for (const h of old) runtimes.set(h.id, h.runtime);
    const withNew = hosts(['a', 'b', 'c', 'new'], [], runtimes);
    const b = createBalancer({ algorithm: 'least_response_time' }, withNew, deps());
    expect(withNew[3]!.runtime.latencyMs).toBe(20);
    expect(b.pick(EMPTY_PICK_CONTEXT)?.id).toBe('a'); // 10 ms beats the new backend's 20
    const c = counts(startMany(b, 20));
    expect(c.get('new')!).toBeLessThan(c.get('a')!);
    expect(c.get('new')!).toBeGreaterThan(0);
  });

  it('sends less to a slow backend than round robin under concurrent load (simulation)', () => {
    const l = simulate('least_response_time', [10, 10, 100], 3000, 12);
    expect(l[2]! / 3000).toBeLessThan(0.1);
  });
});
