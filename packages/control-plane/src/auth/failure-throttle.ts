/**
 * Slows down guessing: after a few wrong tokens from one address, every further attempt from it
 * waits before it is checked, twice as long each time up to a cap. Only wrong tokens count (a
 * request without one guesses nothing), and a right token already verified is never delayed, so
 * an operator behind the same address as a misbehaving script keeps working. Failures are
 * forgotten after a quiet window. Memory is bounded: the oldest addresses are dropped first.
 */

export interface FailureThrottleOptions {
  /** Wrong tokens from one address answered without delay. */
  freeFailures?: number;
  /** Delay after the first failure past the free ones; doubles with each further one. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** An address whose last failure is older than this starts again from zero. */
  forgetAfterMs?: number;
  /** Addresses remembered at most. */
  maxAddresses?: number;
  now?: () => number;
}

interface Failures {
  count: number;
  last: number;
}

export class FailureThrottle {
  private readonly failures = new Map<string, Failures>();
  private readonly freeFailures: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly forgetAfterMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(options: FailureThrottleOptions = {}) {
    this.freeFailures = options.freeFailures ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** How long an attempt from `address` must wait before it is checked. */
  delayFor(address: string): number {
    const entry = this.current(address);
    if (!entry || entry.count < this.freeFailures) return 0;
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (entry.count - this.freeFailures));
  }

  recordFailure(address: string): void {
    const entry = this.current(address) ?? { count: 0, last: 0 };
    entry.count++;
    entry.last = this.now();
    // Re-inserting keeps the map in order of last failure, so the first key is the one to drop.
    this.failures.delete(address);
    this.failures.set(address, entry);
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value as string);
  }

  private current(address: string): Failures | undefined {
    const entry = this.failures.get(address);
    if (entry && this.now() - entry.last > this.forgetAfterMs) {
      this.failures.delete(address);
      return undefined;
    }
    return entry;
  }
}
