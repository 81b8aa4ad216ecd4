/**
 * Weighted round robin by earliest deadline first (Envoy's scheduler): every host has a deadline,
 * a pick takes the earliest and pushes it back by 1/weight. O(log n) per pick, smooth (no bursts),
 * exact shares. The factory uses it when nginx's smooth WRR would have to scan every host per pick
 * (large pools with uneven weights); small pools keep nginx's exact sequence.
 */
import type { Balancer } from './balancer.js';
import { IndexedHeap } from './indexed-heap.js';

export class EarliestDeadlineFirst<T> implements Balancer<T> {
  private readonly heap: IndexedHeap;
  private readonly weights: Float64Array;
  /** Picks so far per item; deadline = (picks + ½) / weight, computed fresh so equal deadlines tie exactly. */
  private readonly picks: Float64Array;

  /** Every weight must be > 0. `offset` in [0, 1) staggers the start (see RoundRobin). */
  constructor(
    private readonly items: readonly T[],
    weights: readonly number[],
    offset = 0,
  ) {
    const n = items.length;
    this.heap = new IndexedHeap(n);
    this.weights = Float64Array.from(weights);
    this.picks = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      // First deadlines at half a step, so light hosts land mid-period rather than after every
      // heavy pick. Ties (equal deadlines) go to the lower index, rotated by the offset.
      this.heap.key[i] = 0.5 / this.weights[i]!;
      this.heap.tie[i] = (i + Math.floor(offset * n)) % n;
    }
    this.heap.build();
  }

  get size(): number {
    return this.items.length;
  }

  pick(): T | undefined {
    if (this.items.length === 0) return undefined;
    const heap = this.heap;
    const i = heap.top();
    const picks = ++this.picks[i]!;
    heap.set(i, (picks + 0.5) / this.weights[i]!, heap.tie[i]!);
    return this.items[i];
  }
}
