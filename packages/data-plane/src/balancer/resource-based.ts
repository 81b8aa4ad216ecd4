/**
 * resource_based: weighted random where each weight follows the load the backend reports in a
 * response header (0 idle .. 1 full), read passively from normal traffic — no probes.
 * Effective weight = weight × max(minWeight, 1 − smoothed load): a saturated backend keeps a
 * trickle (so its reports keep coming and it can win traffic back) and a garbage report cannot
 * push a weight outside [minWeight × weight, weight].
 *
 * The weights live in a Fenwick tree, so a load report costs O(log n) and a pick is an O(log n)
 * descent — no rebuild per report.
 */
import type { Random } from '../runtime/clock.js';
import type { Balancer } from './balancer.js';
import type { Host, LoadTracker } from './host.js';

export class ResourceBased<H extends Host> implements Balancer<H>, LoadTracker {
  /** Fenwick tree (1-based) over current weights. */
  private readonly tree: Float64Array;
  private readonly current: Float64Array;
  private readonly topBit: number;
  private total = 0;

  constructor(
    private readonly hosts: readonly H[],
    private readonly minShare: number,
    private readonly random: Random,
  ) {
    const n = hosts.length;
    this.tree = new Float64Array(n + 1);
    this.current = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      h.runtime.tracker = this;
      h.runtime.slot = i;
      this.current[i] = this.weightOf(h);
      this.total += this.current[i]!;
      // O(n) construction: add each node into its parent.
      const node = i + 1;
      this.tree[node] = this.tree[node]! + this.current[i]!;
      const parent = node + (node & -node);
      if (parent <= n) this.tree[parent] = this.tree[parent]! + this.tree[node]!;
    }
    let bit = 1;
    while (bit * 2 <= n) bit *= 2;
    this.topBit = n === 0 ? 0 : bit;
  }

  get size(): number {
    return this.hosts.length;
  }

  /** The weight a host takes traffic with now. */
  effectiveWeight(slot: number): number {
    return this.current[slot]!;
  }

  pick(): H | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    let rest = this.random() * this.total;
    let pos = 0;
    for (let bit = this.topBit; bit > 0; bit >>= 1) {
      const next = pos + bit;
      if (next <= n && this.tree[next]! <= rest) {
        pos = next;
        rest -= this.tree[next]!;
      }
    }
    return this.hosts[pos < n ? pos : n - 1];
  }

  changed(slot: number): void {
    const h = this.hosts[slot];
    if (h === undefined) return;
    const w = this.weightOf(h);
    const delta = w - this.current[slot]!;
    if (delta === 0) return;
    this.current[slot] = w;
    this.total += delta;
    for (let node = slot + 1; node <= this.hosts.length; node += node & -node) this.tree[node] = this.tree[node]! + delta;
  }

  private weightOf(h: H): number {
    const free = 1 - h.runtime.load;
    return h.weight * Math.max(free, this.minShare);
  }
}
