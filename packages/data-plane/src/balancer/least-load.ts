/**
 * "Send it to the least loaded backend", exactly (not sampled), for least_connections,
 * weighted_least_connections and least_response_time. The hosts sit in an indexed min-heap keyed
 * by their score; the balancer claims their runtimes (host.ts) so every request start, end and
 * latency sample re-scores one host in O(log n), and a pick is a read of the heap's top.
 *
 * Ties are broken randomly, and fairly: a re-scored host's tie key is `sequence + random × n`,
 * so among equally loaded backends the ones whose load changed longest ago go first, shuffled
 * within a window of n changes. (A plain random key per change would not be fair: stale keys drift
 * upwards, and the host just re-scored would keep winning in long runs.) No backend is favoured for
 * being first in the list, and sequential requests to an idle pool spread over every backend.
 */
import type { Random } from '../runtime/clock.js';
import type { Balancer } from './balancer.js';
import { IndexedHeap } from './indexed-heap.js';
import type { BackendRuntime, Host, LoadTracker } from './host.js';

/** Lower is better. */
export type LoadScore = (runtime: BackendRuntime, weight: number) => number;

/** least_connections: in-flight requests, weights ignored. */
export const connectionsScore: LoadScore = (rt) => rt.active;

/**
 * weighted_least_connections: (in-flight + 1) ÷ weight, as HAProxy does. The +1 makes an idle
 * pool prefer its heavier backends instead of treating every idle backend as equal.
 */
export const weightedConnectionsScore: LoadScore = (rt, weight) => (rt.active + 1) / weight;

/**
 * least_response_time: peak-EWMA latency × (in-flight + 1) ÷ weight. The small floor keeps
 * in-flight counts meaningful before any latency is known.
 */
export const responseTimeScore: LoadScore = (rt, weight) => ((rt.latencyMs + 0.001) * (rt.active + 1)) / weight;

export class LeastLoad<H extends Host> implements Balancer<H>, LoadTracker {
  private readonly heap: IndexedHeap;
  private sequence = 0;

  constructor(
    private readonly hosts: readonly H[],
    private readonly score: LoadScore,
    private readonly random: Random,
  ) {
    const heap = new IndexedHeap(hosts.length);
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      h.runtime.tracker = this;
      h.runtime.slot = i;
      heap.key[i] = score(h.runtime, h.weight);
      heap.tie[i] = random() * hosts.length;
    }
    heap.build();
    this.heap = heap;
  }

  get size(): number {
    return this.hosts.length;
  }

  pick(): H | undefined {
    if (this.hosts.length === 0) return undefined;
    return this.hosts[this.heap.top()];
  }

  changed(slot: number): void {
    const h = this.hosts[slot];
    if (h === undefined) return;
    this.heap.set(slot, this.score(h.runtime, h.weight), ++this.sequence + this.random() * this.hosts.length);
  }
}

/**
 * least_response_time must not flood a backend it knows nothing about (its latency would read as
 * zero): hosts without a sample start at the median of those with one.
 */
export function seedLatencies(hosts: readonly Host[]): void {
  const known: number[] = [];
  for (const h of hosts) if (h.runtime.latencySamples > 0) known.push(h.runtime.latencyMs);
  if (known.length === 0) return;
  known.sort((a, b) => a - b);
  const mid = known.length >> 1;
  const median = known.length % 2 === 1 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2;
  for (const h of hosts) if (h.runtime.latencySamples === 0) h.runtime.latencyMs = median;
}
