import type { Random } from '../runtime/clock.js';
import type { Balancer } from './balancer.js';

/**
 * nginx's smooth weighted round robin: every pick adds each item's weight to its running score,
 * takes the highest score (first on ties) and subtracts the total weight from the winner. Weights
 * 5:1:1 give `a a b a c a a`: heavy items are spread out, never sent in bursts.
 *
 * The sequence repeats every W = sum(weights / gcd) picks, so when n·W is small we run the
 * algorithm once at build time and a pick is an array read (O(1)); otherwise a pick runs the O(n)
 * loop itself. Both paths give exactly the same sequence. A precomputed schedule starts at a
 * random offset (see RoundRobin for why); the live loop always starts at the beginning.
 */
export interface SmoothWeightedOptions {
  random?: Random;
  /** Largest n·W for which the schedule is precomputed. */
  maxScheduleWork?: number;
}

const DEFAULT_MAX_SCHEDULE_WORK = 1 << 22;
const MAX_SCHEDULE_LENGTH = 1 << 20;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export class SmoothWeightedRoundRobin<T> implements Balancer<T> {
  private readonly items: readonly T[];
  private readonly weights: Float64Array;
  private readonly current: Float64Array;
  private readonly total: number;
  /** Indexes into items for one full period; null when every weight is equal (plain rotation). */
  private readonly schedule: Uint32Array | null;
  private readonly period: number;
  /** True when a pick runs the O(n) loop (the schedule was too large to precompute). */
  readonly live: boolean;
  private next = 0;
  /** Retries walk the same schedule with a position of their own (Balancer.pickForRetry). */
  private retryNext = 0;

  /** Items with weight ≤ 0 are dropped: they never take traffic. */
  constructor(items: readonly T[], weights: readonly number[], options: SmoothWeightedOptions = {}) {
    const kept: T[] = [];
    const w: number[] = [];
    items.forEach((item, i) => {
      const weight = weights[i] ?? 0;
      if (weight > 0) {
        kept.push(item);
        w.push(weight);
      }
    });
    this.items = kept;
    const divisor = w.reduce((g, x) => gcd(g, x), 0) || 1;
    this.weights = Float64Array.from(w, (x) => x / divisor);
    this.current = new Float64Array(w.length);
    this.total = this.weights.reduce((a, b) => a + b, 0);
    const n = kept.length;
    const allEqual = this.weights.every((x) => x === 1);
    const maxWork = options.maxScheduleWork ?? DEFAULT_MAX_SCHEDULE_WORK;
    if (allEqual) {
      this.schedule = null;
      this.period = n;
      this.live = false;
    } else if (n * this.total <= maxWork && this.total <= MAX_SCHEDULE_LENGTH) {
      this.schedule = new Uint32Array(this.total);
      for (let k = 0; k < this.total; k++) this.schedule[k] = this.step();
      this.current.fill(0);
      this.period = this.total;
      this.live = false;
    } else {
      this.schedule = null;
      this.period = this.total;
      this.live = true;
    }
    if (!this.live && this.period > 0 && options.random) this.next = Math.floor(options.random() * this.period) % this.period;
    this.retryNext = this.next;
  }

  get size(): number {
    return this.items.length;
  }

  pick(): T | undefined {
    if (this.items.length === 0) return undefined;
    if (this.live) return this.items[this.step()];
    const k = this.next;
    this.next = k + 1 === this.period ? 0 : k + 1;
    return this.items[this.schedule === null ? k : this.schedule[k]!];
  }

  pickForRetry(): T | undefined {
    // The live loop has no schedule to walk separately; its retries take turns (rare: huge periods).
    if (this.items.length === 0 || this.live) return this.pick();
    const k = this.retryNext;
    this.retryNext = k + 1 === this.period ? 0 : k + 1;
    return this.items[this.schedule === null ? k : this.schedule[k]!];
  }

  /** One round of the nginx algorithm; returns the winner's index. */
  private step(): number {
    const current = this.current;
    const weights = this.weights;
    let best = 0;
    let bestScore = -Infinity;
    for (let i = 0; i < current.length; i++) {
      const score = current[i]! + weights[i]!;
      current[i] = score;
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    current[best] = bestScore - this.total;
    return best;
  }
}
