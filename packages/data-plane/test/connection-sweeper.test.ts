import { afterEach, describe, expect, it } from 'vitest';
import { coarseClock, deadlineIn, SWEEP_INTERVAL_MS, setSweepInterval, unwatch, watch } from '../src/upstream/connection-sweeper.js';

/** Resolves with the sweep times of the next `n` ticks of a member watched meanwhile. */
function ticks(n: number): Promise<number[]> {
  return new Promise((resolve) => {
    const seen: number[] = [];
    const member = {
      sweep(now: number) {
        seen.push(now);
        if (seen.length === n) {
          unwatch(member);
          resolve(seen);
        }
      },
    };
    watch(member);
  });
}

describe('connection sweeper', () => {
  afterEach(() => setSweepInterval());

  it('sets deadlines at least the timeout and at most a tick more away from its clock', () => {
    // Summed as deadlineIn sums (clock + timeout + tick): subtracting the clock back out of a
    // fractional performance.now() would not give the integer exactly.
    expect(deadlineIn(60)).toBe(coarseClock() + 60 + SWEEP_INTERVAL_MS);
    setSweepInterval(5);
    expect(deadlineIn(20)).toBe(coarseClock() + 20 + 5);
  });

  it('ticks at the interval it is given, also when the timer is already running', async () => {
    const first = ticks(3);
    setSweepInterval(5);
    const times = await first;
    // Three ticks in well under one default tick: the running timer was restarted at 5 ms.
    expect(times[2]! - times[0]!).toBeLessThan(SWEEP_INTERVAL_MS);
    setSweepInterval();
    const slow = await ticks(2);
    expect(slow[1]! - slow[0]!).toBeGreaterThanOrEqual(SWEEP_INTERVAL_MS - 5);
  });
});
