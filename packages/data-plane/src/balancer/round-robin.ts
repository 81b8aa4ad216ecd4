import type { Random } from '../runtime/clock.js';
import type { Balancer } from './balancer.js';

/**
 * Plain round robin, ignoring weights. The start position is random so that many data planes
 * applying the same snapshot at once do not all send their first request to the same backend.
 */
export class RoundRobin<T> implements Balancer<T> {
  private readonly items: readonly T[];
  private next: number;
  /** Retries rotate on their own (Balancer.pickForRetry). */
  private retryNext: number;

  constructor(items: readonly T[], random: Random) {
    this.items = items;
    this.next = items.length === 0 ? 0 : Math.floor(random() * items.length) % items.length;
    this.retryNext = this.next;
  }

  get size(): number {
    return this.items.length;
  }

  pick(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const i = this.next;
    this.next = i + 1 === n ? 0 : i + 1;
    return this.items[i];
  }

  pickForRetry(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const i = this.retryNext;
    this.retryNext = i + 1 === n ? 0 : i + 1;
    return this.items[i];
  }
}
