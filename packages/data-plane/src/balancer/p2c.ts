/**
 * Power of two choices (Mitzenmacher; Envoy's least_request): sample two distinct hosts at random
 * and keep the better by Envoy's `weight / (active + 1)^bias`. O(1) at any pool size, and unlike an
 * exact least-connections it never herds every data plane onto the same momentarily idle backend.
 * bias 0 ignores load (weighted choice between the two), higher biases punish load harder.
 */
import type { Random } from '../runtime/clock.js';
import type { Balancer } from './balancer.js';
import type { Host } from './host.js';

export class PowerOfTwoChoices<H extends Host> implements Balancer<H> {
  constructor(
    private readonly hosts: readonly H[],
    private readonly bias: number,
    private readonly random: Random,
  ) {}

  get size(): number {
    return this.hosts.length;
  }

  pick(): H | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    const i = Math.floor(this.random() * n) % n;
    let j = Math.floor(this.random() * (n - 1)) % (n - 1);
    if (j >= i) j++;
    const a = hosts[i]!;
    const b = hosts[j]!;
    return this.score(b) > this.score(a) ? b : a;
  }

  private score(h: H): number {
    const load = h.runtime.active + 1;
    const bias = this.bias;
    return h.weight / (bias === 1 ? load : bias === 0 ? 1 : load ** bias);
  }
}
