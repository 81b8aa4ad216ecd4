/**
 * ip_hash: the client address hashed onto the hosts in proportion to their weights (the classic
 * modulo scheme). Cheap and stable while the pool is unchanged; when a backend joins or leaves most
 * clients move — consistent_hash and maglev with `hashOn: {source: "ip"}` move only ≈1/n of them.
 * The whole address is hashed (not nginx's /24), so clients behind one NAT range still spread.
 * A request without a peer address gets a weighted random pick.
 */
import type { Random } from '../runtime/clock.js';
import type { Balancer, PickContext } from './balancer.js';
import { hashString } from './hash.js';
import { cumulativeWeights, searchCumulative } from './random.js';

export class IpHash<T> implements Balancer<T> {
  private readonly cumulative: Float64Array;
  private readonly total: number;

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

  pick(ctx: PickContext): T | undefined {
    if (this.items.length === 0) return undefined;
    const ip = ctx.clientIp();
    // hash / 2^32 in [0, 1) scaled onto the weights: fractional (slow-start) weights work too.
    const u = ip === undefined ? this.random() : hashString(ip) / 4294967296;
    return this.items[searchCumulative(this.cumulative, u * this.total)];
  }
}
