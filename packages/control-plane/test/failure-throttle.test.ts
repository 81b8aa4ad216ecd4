import { describe, expect, it } from 'vitest';
import { FailureThrottle } from '../src/auth/failure-throttle.js';

describe('FailureThrottle', () => {
  it('lets the first failures through, then doubles the delay per failure up to the cap', () => {
    let now = 0;
    const throttle = new FailureThrottle({ freeFailures: 3, baseDelayMs: 100, maxDelayMs: 1000, now: () => now });
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      delays.push(throttle.delayFor('10.0.0.1'));
      throttle.recordFailure('10.0.0.1');
      now += 10;
    }
    expect(delays).toEqual([0, 0, 0, 100, 200, 400, 800, 1000, 1000]);
    // Another address is not affected.
    expect(throttle.delayFor('10.0.0.2')).toBe(0);
  });

  it('forgets an address after a quiet window', () => {
    let now = 0;
    const throttle = new FailureThrottle({ freeFailures: 1, baseDelayMs: 100, forgetAfterMs: 60_000, now: () => now });
    throttle.recordFailure('a');
    throttle.recordFailure('a');
    expect(throttle.delayFor('a')).toBe(200);
    now += 60_001;
    expect(throttle.delayFor('a')).toBe(0);
  });

  it('remembers a bounded number of addresses, dropping the one whose last failure is oldest', () => {
    const throttle = new FailureThrottle({ freeFailures: 0, baseDelayMs: 1, maxAddresses: 2 });
    throttle.recordFailure('a');
    throttle.recordFailure('b');
    throttle.recordFailure('a');
    throttle.recordFailure('c');
    expect(throttle.delayFor('b')).toBe(0);
    expect(throttle.delayFor('a')).toBeGreaterThan(0);
    expect(throttle.delayFor('c')).toBeGreaterThan(0);
  });
});
