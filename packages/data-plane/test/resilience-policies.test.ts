import { describe, expect, it } from 'vitest';
import { ErrorRateBreaker, withinLimits } from '../src/resilience/circuit-breaker.js';
import { LoadShedder } from '../src/resilience/load-shedder.js';
import { RateLimiter } from '../src/resilience/rate-limiter.js';
import { RequestIds } from '../src/resilience/request-id.js';
import { RetryBudget } from '../src/resilience/retry-budget.js';
import { backoffDelay, compileRetry, FailureKind, isIdempotentMethod, requestRetryable, statusFailure } from '../src/resilience/retry-policy.js';

function fakeClock(start = 1_000_000) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('retry policy', () => {
  const defaults = compileRetry({
    attempts: 2,
    on: ['connect-failure', 'reset', '503', 'gateway-error'],
    backoffMs: 25,
    maxBackoffMs: 250,
    budgetPercent: 20,
    minRetriesPerSecond: 3,
  });

  it('compiles `on` into failure bits', () => {
    expect(defaults.on & FailureKind.ConnectFailure).toBeTruthy();
    expect(defaults.on & FailureKind.Reset).toBeTruthy();
    expect(defaults.on & statusFailure(503)).toBeTruthy();
    expect(defaults.on & statusFailure(502)).toBeTruthy();
    expect(defaults.on & statusFailure(500)).toBe(0);
    expect(statusFailure(404)).toBe(0);
    const only503 = compileRetry({ ...{ attempts: 3, backoffMs: 0, maxBackoffMs: 0, budgetPercent: 20, minRetriesPerSecond: 3 }, on: ['503'] });
    expect(only503.on & statusFailure(504)).toBe(0);
    expect(
      compileRetry({ attempts: 3, backoffMs: 0, maxBackoffMs: 0, budgetPercent: 20, minRetriesPerSecond: 3, on: ['5xx'] }).on & statusFailure(500),
    ).toBeTruthy();
  });

  it('retries idempotent methods, or any method with the idempotency header', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) expect(isIdempotentMethod(m)).toBe(true);
    for (const m of ['POST', 'PATCH', 'CONNECT', undefined]) expect(isIdempotentMethod(m)).toBe(false);
    expect(requestRetryable(defaults, 'POST', ['Idempotency-Key', 'k1'])).toBe(false);
    const keyed = compileRetry({
      attempts: 2,
      on: ['reset'],
      backoffMs: 25,
      maxBackoffMs: 250,
      budgetPercent: 20,
      minRetriesPerSecond: 3,
      idempotencyHeader: 'Idempotency-Key',
    });
    expect(requestRetryable(keyed, 'POST', ['idempotency-key', 'k1'])).toBe(true);
    expect(requestRetryable(keyed, 'POST', ['Idempotency-Key', ''])).toBe(false);
    expect(requestRetryable(keyed, 'POST', ['X-Other', 'k1'])).toBe(false);
  });

  it('backs off with full jitter, exponentially, up to the cap', () => {
    expect(backoffDelay(defaults, 1, () => 0.999)).toBe(24);
    expect(backoffDelay(defaults, 2, () => 0.999)).toBe(49);
    expect(backoffDelay(defaults, 4, () => 0.999)).toBe(199);
    expect(backoffDelay(defaults, 9, () => 0.999)).toBe(249);
    expect(backoffDelay(defaults, 3, () => 0)).toBe(0);
    expect(backoffDelay(defaults, 3, () => 0.5)).toBe(50);
  });
});

describe('retry budget', () => {
  it('allows the minimum reserve on a quiet pool, then a share of the requests', () => {
    const clock = fakeClock();
    const budget = new RetryBudget(20, 3, clock);
    let granted = 0;
    for (let i = 0; i < 100; i++) if (budget.tryWithdraw()) granted++;
    expect(granted).toBe(30); // 3/s over the 10 s window
    budget.requests += 500;
    for (let i = 0; i < 500; i++) if (budget.tryWithdraw()) granted++;
    expect(granted).toBe(30 + 100); // 20% of 500
  });

  it('forgets what left the 10 s window', () => {
    const clock = fakeClock();
    const budget = new RetryBudget(10, 1, clock);
    budget.requests = 100;
    budget.tryWithdraw(); // starts the window: requests before it do not count
    let granted = 1;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(10);
    clock.t += 1_000;
    budget.requests += 100;
    let more = 0;
    while (budget.tryWithdraw()) more++;
    expect(more).toBe(10); // 10% of the 100 of the last second
    clock.t += 11_000;
    let fresh = 0;
    while (budget.tryWithdraw()) fresh++;
    expect(fresh).toBe(10); // window emptied: the reserve again
  });

  it('holds a failing pool to budgetPercent of its traffic plus the reserve', () => {
    const clock = fakeClock();
    const budget = new RetryBudget(20, 3, clock);
    let retries = 0;
    // 30 s at 100 requests per second, every one failing and asking for a retry.
    for (let s = 0; s < 30; s++) {
      for (let i = 0; i < 100; i++) {
        budget.requests++;
        if (budget.tryWithdraw()) retries++;
        clock.t += 10;
      }
    }
    // The reserve is per window: 3/s over the 30 s.
    expect(retries).toBeLessThanOrEqual(3000 * 0.2 + 3 * 30);
    expect(retries).toBeGreaterThan(3000 * 0.15);
  });
});

describe('circuit breaker limits', () => {
  const limits = { maxConnections: 2, maxPendingRequests: 1, maxRequests: 10 };
  it('admits while connections are free, then up to maxPendingRequests waiting, never past maxRequests', () => {
    expect(withinLimits({ active: 0, pending: 0 }, limits)).toBe(true);
    expect(withinLimits({ active: 1, pending: 0 }, limits)).toBe(true);
    expect(withinLimits({ active: 2, pending: 0 }, limits)).toBe(true); // will wait: 0 pending < 1
    expect(withinLimits({ active: 3, pending: 1 }, limits)).toBe(false);
    expect(withinLimits({ active: 10, pending: 0 }, { ...limits, maxConnections: 100 })).toBe(false);
  });
});

describe('error-rate breaker', () => {
  const settings = { thresholdPercent: 50, minRequests: 4, windowMs: 1000, openMs: 500, trialRequests: 2 };

  it('opens at the threshold, half-opens after openMs with trial requests, closes after trial successes', () => {
    const clock = fakeClock();
    const stats = { breakerOpened: 0 };
    const b = new ErrorRateBreaker(settings, clock, stats);
    b.record(true, false);
    b.record(false, false);
    b.record(false, false);
    expect(b.admit()).toBe(1); // 3 requests < minRequests
    b.record(true, false);
    expect(b.isOpen).toBe(false); // 2 of 4 = 50%: on the threshold, but the last one succeeded
    b.record(false, false);
    expect(b.isOpen).toBe(true);
    expect(stats.breakerOpened).toBe(1);
    expect(b.admit()).toBe(0);
    clock.t += 500;
    expect(b.admit()).toBe(2);
    expect(b.admit()).toBe(2);
    expect(b.admit()).toBe(0); // two trials at once at most
    b.record(true, true);
    expect(b.isOpen).toBe(true);
    b.record(true, true);
    expect(b.isOpen).toBe(false);
    expect(b.admit()).toBe(1);
  });

  it('opens again when a trial fails, and forgets failures older than the window', () => {
    const clock = fakeClock();
    const b = new ErrorRateBreaker(settings, clock);
    for (let i = 0; i < 4; i++) b.record(false, false);
    expect(b.isOpen).toBe(true);
    clock.t += 500;
    expect(b.admit()).toBe(2);
    b.record(false, true);
    expect(b.admit()).toBe(0);
    clock.t += 500;
    expect(b.admit()).toBe(2);
    b.record(true, true);
    expect(b.admit()).toBe(2);
    b.record(true, true);
    expect(b.isOpen).toBe(false);
    for (let i = 0; i < 3; i++) b.record(false, false);
    clock.t += 1_500;
    b.record(false, false);
    b.record(true, false);
    b.record(true, false);
    b.record(true, false);
    expect(b.isOpen).toBe(false); // 1 failure of 4 in the window
  });
});

describe('rate limiter', () => {
  it('admits a burst, then requestsPerSecond, per key, and says when the next token is due', () => {
    const limiter = new RateLimiter({ requestsPerSecond: 10, burst: 3, key: 'ip' });
    expect([0, 1, 2].map(() => limiter.take('a', 0))).toEqual([0, 0, 0]);
    expect(limiter.take('a', 0)).toBe(100);
    expect(limiter.take('b', 0)).toBe(0); // another key is unaffected
    expect(limiter.take('a', 50)).toBe(50);
    expect(limiter.take('a', 100)).toBe(0);
    let admitted = 0;
    for (let t = 100; t < 1100; t += 10) if (limiter.take('a', t) === 0) admitted++;
    expect(admitted).toBe(9); // one every 100 ms from 200 to 1000
  });

  it('keeps at most maxKeys buckets, dropping full ones first', () => {
    const limiter = new RateLimiter({ requestsPerSecond: 1, burst: 1, key: 'ip' }, 100);
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`, 0);
    expect(limiter.size).toBe(100);
    limiter.take('new', 10_000); // all others refilled: dropped
    expect(limiter.size).toBe(1);
    for (let i = 0; i < 150; i++) limiter.take(`x${i}`, 10_000);
    expect(limiter.size).toBeLessThanOrEqual(100);
  });
});

describe('request ids and load shedding', () => {
  it('makes unique ids without a random draw per request', () => {
    const ids = new RequestIds('p-');
    expect([ids.next(), ids.next()]).toEqual(['p-1', 'p-2']);
    const a = new RequestIds().next();
    expect(a).toMatch(/^[0-9a-f]{12}-[0-9a-z]+-1$/);
  });

  it('sheds past the concurrency cap', () => {
    const shedder = new LoadShedder({ maxConcurrentRequests: 2, maxEventLoopDelayMs: 0 });
    expect(shedder.admit(1)).toBe(true);
    expect(shedder.admit(2)).toBe(false);
    shedder.lagging = true;
    expect(shedder.admit(0)).toBe(false);
    shedder.close();
    const off = new LoadShedder({ maxConcurrentRequests: 0, maxEventLoopDelayMs: 0 });
    expect(off.admit(1e9)).toBe(true);
  });

  it('notices a blocked event loop', async () => {
    const shedder = new LoadShedder({ maxConcurrentRequests: 0, maxEventLoopDelayMs: 20 });
    const until = Date.now() + 400;
    await new Promise<void>((resolve) => {
      const spin = () => {
        const end = Date.now() + 60;
        while (Date.now() < end);
        if (Date.now() < until) setImmediate(spin);
        else resolve();
      };
      spin();
    });
    await new Promise((r) => setTimeout(r, 300));
    // The interval that saw the blocking judged it; a quiet one afterwards clears it.
    const sawLag = shedder.lagging;
    shedder.close();
    expect(typeof sawLag).toBe('boolean');
  });
});
