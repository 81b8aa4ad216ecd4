/** `random` and `weighted_random`: independent picks, no state, so many data planes never synchronize. */
import type { Random } from '../runtime/clock.js';
import type { Balancer } from './balancer.js';

export class RandomBalancer<T> implements Balancer<T> {
  constructor(
    private readonly items: readonly T[],
    private readonly random: Random,
  ) {}

  get size(): number {
    return this.items.length;
  }

  pick(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    return this.items[Math.floor(this.random() * n) % n];
  }
}

/** Running sums of the first `n` weights (for searchCumulative) and their total. */
export function cumulativeWeights(weights: readonly number[], n: number): { cumulative: Float64Array; total: number } {
  const cumulative = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += weights[i]!;
    cumulative[i] = sum;
  }
  return { cumulative, total: sum };
}

/** Index of the first entry of the ascending `cumulative` array greater than `u`, clamped to the last. */
export function searchCumulative(cumulative: Float64Array, u: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumulative[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Picks item i with probability weight_i / Σ weight: a binary search over running sums, O(log n). */
export class WeightedRandom<T> implements Balancer<T> {
  private readonly cumulative: Float64Array;
  private readonly total: number;

  /** Every weight must be > 0. */
  constructor(
    private readonly items: readonly T[],
    weights: readonly number[],
    private readonly random: Random,
  ) {
    const { cumulative, total } = cumulativeWeights(weights, items.length);
    this.cumulative = cumulative;
    this.total = total;
  }

  get size(): number {
    return this.items.length;
  }

  pick(): T | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[searchCumulative(this.cumulative, this.random() * this.total)];
  }
}
