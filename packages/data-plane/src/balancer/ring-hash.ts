/**
 * consistent_hash: a ring of virtual nodes (Karger et al.; Envoy's ring_hash). Each host owns
 * `virtualNodes × weight` points on a 32-bit ring; a key goes to the owner of the first point at or
 * after its hash. Adding or removing one host of n moves only ≈1/n of the keys, and every node
 * builds the same ring from the backend ids.
 *
 * Points are derived from one hash of the id (fmix32 of id-hash + k·golden ratio) rather than by
 * hashing `id-k` strings, so a 10,000-backend ring builds without allocating a million strings.
 *
 * Bounded load (`hashBalanceFactor`, Envoy's hash_balance_factor; "consistent hashing with bounded
 * loads", Mirrokni et al.): a host already holding more than factor% of its weighted share of the
 * in-flight requests is skipped and the walk goes on clockwise, so one hot key cannot bury a host.
 */
import type { Random } from '../runtime/clock.js';
import type { Balancer, PickContext } from './balancer.js';
import { fmix32, hashString } from './hash.js';
import type { HashKeyReader } from './hash-key.js';
import type { Host, LoadTracker } from './host.js';

/** Upper bound on ring points; larger rings are scaled down proportionally. */
export const MAX_RING_POINTS = 1 << 22;
const GOLDEN = 0x9e3779b9;
const OWNER_BITS = 32768; // hosts per pool ≤ 20000 < 2^15

export interface RingHashOptions {
  virtualNodes: number;
  /** Percent ≥ 100, or undefined for no bound. */
  hashBalanceFactor?: number | undefined;
}

export class RingHash<H extends Host> implements Balancer<H>, LoadTracker {
  /** Sorted point hashes and, at the same index, the owning host. */
  readonly points: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly factor: number;
  private readonly totalWeight: number;
  private readonly seen: Int32Array;
  private totalActive = 0;

  constructor(
    private readonly hosts: readonly H[],
    private readonly key: HashKeyReader,
    options: RingHashOptions,
    private readonly random: Random,
  ) {
    if (hosts.length > OWNER_BITS) throw new Error(`ring hash supports at most ${OWNER_BITS} hosts`);
    let wanted = 0;
    for (const h of hosts) wanted += Math.max(1, Math.round(options.virtualNodes * h.weight));
    const scale = wanted > MAX_RING_POINTS ? MAX_RING_POINTS / wanted : 1;
    const counts = hosts.map((h) => Math.max(1, Math.round(options.virtualNodes * h.weight * scale)));
    const sorted = new Float64Array(counts.reduce((a, b) => a + b, 0));
    let at = 0;
    for (let i = 0; i < hosts.length; i++) {
      const base = hashString(hosts[i]!.id);
      // point × 2^15 + owner < 2^47: exact in a double, and sorting the doubles sorts by point, then owner.
      for (let k = 0; k < counts[i]!; k++) sorted[at++] = fmix32((base + Math.imul(k, GOLDEN)) >>> 0) * OWNER_BITS + i;
    }
    sorted.sort();
    this.points = new Uint32Array(sorted.length);
    this.owners = new Uint32Array(sorted.length);
    for (let p = 0; p < sorted.length; p++) {
      const v = sorted[p]!;
      const owner = v % OWNER_BITS;
      this.owners[p] = owner;
      this.points[p] = (v - owner) / OWNER_BITS;
    }
    this.factor = (options.hashBalanceFactor ?? 0) / 100;
    this.totalWeight = hosts.reduce((s, h) => s + h.weight, 0);
    this.seen = new Int32Array(hosts.length);
    if (this.factor > 0) {
      for (let i = 0; i < hosts.length; i++) {
        const rt = hosts[i]!.runtime;
        rt.tracker = this;
        rt.slot = i;
        this.seen[i] = rt.active;
        this.totalActive += rt.active;
      }
    }
  }

  get size(): number {
    return this.hosts.length;
  }

  pick(ctx: PickContext): H | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    const key = this.key(ctx);
    const hash = key === undefined ? Math.floor(this.random() * 4294967296) : hashString(key);
    let i = this.firstAtOrAfter(hash);
    if (this.factor === 0) return this.hosts[this.owners[i]!];
    // Bounded load: walk on past hosts over their share. The shares sum to more than the load,
    // so a host under its bound always exists.
    const load = (this.totalActive + 1) * this.factor;
    for (let step = 0; step < n; step++) {
      const h = this.hosts[this.owners[i]!]!;
      if (h.runtime.active + 1 <= Math.ceil((load * h.weight) / this.totalWeight)) return h;
      i = i + 1 === n ? 0 : i + 1;
    }
    return this.hosts[this.owners[this.firstAtOrAfter(hash)]!];
  }

  changed(slot: number): void {
    const rt = this.hosts[slot]?.runtime;
    if (rt === undefined) return;
    this.totalActive += rt.active - this.seen[slot]!;
    this.seen[slot] = rt.active;
  }

  private firstAtOrAfter(hash: number): number {
    const points = this.points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }
}
