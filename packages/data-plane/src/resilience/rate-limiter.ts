/**
 * Per-route local rate limiting: one token bucket per client key (address or a header's value).
 * A bucket holds up to `burst` tokens and gains `requestsPerSecond` per second; a request takes
 * one or is refused with the time until the next token (for Retry-After). Local means per data
 * plane process: N processes admit up to N times the rate in all.
 *
 * Buckets live in a Map bounded by MAX_KEYS: when it is full, buckets that have refilled
 * completely (they hold no state worth keeping) are dropped first, then the oldest ones.
 */
import type { RateLimit } from '@lb/shared';

export const MAX_KEYS = 100_000;

interface Bucket {
  tokens: number;
  /** Monotonic ms of the last refill. */
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;
  readonly burst: number;
  /** Lower case; set when keyed by a header. */
  readonly header: string | undefined;

  constructor(
    readonly settings: RateLimit,
    private readonly maxKeys = MAX_KEYS,
  ) {
    this.ratePerMs = settings.requestsPerSecond / 1000;
    this.burst = settings.burst;
    this.header = settings.key === 'header' ? settings.header?.toLowerCase() : undefined;
  }

  /** Takes a token for `key` at monotonic time `nowMs`: 0 when admitted, else ms until a token is due. */
  take(key: string, nowMs: number): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(nowMs);
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(key, b);
    } else {
      const tokens = b.tokens + (nowMs - b.at) * this.ratePerMs;
      b.tokens = Math.min(tokens, this.burst);
      b.at = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.ratePerMs);
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(nowMs: number): void {
    for (const [key, b] of this.buckets) if (b.tokens + (nowMs - b.at) * this.ratePerMs >= this.burst) this.buckets.delete(key);
    // Still full: drop the oldest tenth (Map keeps insertion order).
    if (this.buckets.size >= this.maxKeys) {
      let n = Math.max(1, Math.floor(this.maxKeys / 10));
      for (const key of this.buckets.keys()) {
        this.buckets.delete(key);
        if (--n === 0) break;
      }
    }
  }
}
