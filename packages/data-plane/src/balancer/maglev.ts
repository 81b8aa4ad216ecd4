/**
 * maglev: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016), as in Envoy. Each host
 * walks its own permutation of a prime-sized table (offset and skip from two hashes of its id)
 * and claims the next free slot in turn until the table is full; a key is one table read. Load is
 * even to within a few percent, a change of one host moves little more than 1/n of the keys, and
 * every node builds the same table. Weights set how often a host takes its turn.
 */
import type { Random } from '../runtime/clock.js';
import type { Balancer, PickContext } from './balancer.js';
import { hashString } from './hash.js';
import type { HashKeyReader } from './hash-key.js';
import type { Host } from './host.js';

/** Prime, as the algorithm requires; Envoy's default. Supports up to this many hosts. */
export const MAGLEV_TABLE_SIZE = 65537;

/** Builds the lookup table: entry → host index. `weights` must be > 0. */
export function buildMaglevTable(ids: readonly string[], weights: readonly number[], size = MAGLEV_TABLE_SIZE): Int32Array {
  const n = ids.length;
  const table = new Int32Array(size).fill(-1);
  if (n === 0) return table;
  if (n > size) throw new Error(`maglev supports at most ${size} hosts`);
  const cursor = new Float64Array(n);
  const skip = new Float64Array(n);
  const share = new Float64Array(n);
  const credit = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) maxWeight = Math.max(maxWeight, weights[i]!);
  for (let i = 0; i < n; i++) {
    cursor[i] = hashString(ids[i]!, 0x6d61676c) % size;
    skip[i] = (hashString(ids[i]!, 0x65763031) % (size - 1)) + 1;
    share[i] = weights[i]! / maxWeight;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      credit[i] = credit[i]! + share[i]!;
      if (credit[i]! < 1) continue;
      credit[i] = credit[i]! - 1;
      let c = cursor[i]!;
      while (table[c]! >= 0) {
        c += skip[i]!;
        if (c >= size) c -= size;
      }
      table[c] = i;
      c += skip[i]!;
      cursor[i] = c >= size ? c - size : c;
      if (++filled === size) return table;
    }
  }
}

export class Maglev<H extends Host> implements Balancer<H> {
  readonly table: Int32Array;

  constructor(
    private readonly hosts: readonly H[],
    private readonly key: HashKeyReader,
    private readonly random: Random,
  ) {
    this.table = buildMaglevTable(
      hosts.map((h) => h.id),
      hosts.map((h) => h.weight),
    );
  }

  get size(): number {
    return this.hosts.length;
  }

  pick(ctx: PickContext): H | undefined {
    if (this.hosts.length === 0) return undefined;
    const key = this.key(ctx);
    const hash = key === undefined ? Math.floor(this.random() * 4294967296) : hashString(key);
    return this.hosts[this.table[hash % MAGLEV_TABLE_SIZE]!];
  }
}
