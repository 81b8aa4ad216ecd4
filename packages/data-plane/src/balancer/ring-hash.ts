/**
 * consistent_hash: a ring of virtual nodes (Karger et al.; Envoy's ring_hash). Each host owns
 * `virtualNodes × weight ÷ mean weight` points on a 32-bit ring (so a ring has about
 * virtualNodes × n points whatever the weights); a key goes to the owner of the first point at or
 * after its hash. Adding or removing one host of n moves only ≈1/n of the keys, and every node
 * builds the same ring from the backend ids.
 *
 * Points are derived from one hash of the id (fmix32 of id-hash + k·golden ratio) rather than by
 * hashing `id-k` strings, and sorted with a two-pass radix sort, so a 10,000-backend ring of a
 * million points builds in tens of milliseconds without allocating a million strings.
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
const MAX_HOSTS = 1 << 20;

/**
 * Sorts `keys` ascending and permutes `values` alike: LSD radix sort, two 16-bit passes, stable
 * (equal points keep host order, so every node breaks ties the same way).
 */
function radixSort(keys: Uint32Array, values: Uint32Array): void {
  const n = keys.length;
  let k1: Uint32Array = keys;
  let v1: Uint32Array = values;
  let k2: Uint32Array = new Uint32Array(n);
  let v2: Uint32Array = new Uint32Array(n);
  const count = new Uint32Array(65536);
  for (const shift of [0, 16]) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(k1[i]! >>> shift) & 0xffff]!++;
    let sum = 0;
    for (let b = 0; b < 65536; b++) {
      const c = count[b]!;
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = count[(k1[i]! >>> shift) & 0xffff]!++;
      k2[at] = k1[i]!;
      v2[at] = v1[i]!;
    }
    [k1, k2] = [k2, k1];
    [v1, v2] = [v2, v1];
  }
  // Two passes: the sorted data is back in the arrays passed in.
}

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
    if (hosts.length > MAX_HOSTS) throw new Error(`ring hash supports at most ${MAX_HOSTS} hosts`);
    const totalWeight = hosts.reduce((s, h) => s + h.weight, 0);
    const perWeight = hosts.length === 0 ? 0 : (options.virtualNodes * hosts.length) / totalWeight;
    const wanted = options.virtualNodes * hosts.length;
    const scale = wanted > MAX_RING_POINTS ? MAX_RING_POINTS / wanted : 1;
    const counts = hosts.map((h) => Math.max(1, Math.round(h.weight * perWeight * scale)));
    const total = counts.reduce((a, b) => a + b, 0);
    this.points = new Uint32Array(total);
    this.owners = new Uint32Array(total);
    let at = 0;
    for (let i = 0; i < hosts.length; i++) {
      const base = hashString(hosts[i]!.id);
      for (let k = 0; k < counts[i]!; k++) {
        this.points[at] = fmix32((base + Math.imul(k, GOLDEN)) >>> 0);
        this.owners[at++] = i;
      }
    }
    radixSort(this.points, this.owners);
    this.factor = (options.hashBalanceFactor ?? 0) / 100;
    this.totalWeight = totalWeight;
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
