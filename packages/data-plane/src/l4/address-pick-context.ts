/**
 * The PickContext of an L4 connection: the client's address is all there is to hash (ip_hash,
 * consistent_hash and maglev on `ip`); validation refuses the other hash sources on L4 pools.
 */
import type { PickContext } from '../balancer/balancer.js';

export class AddressPickContext implements PickContext {
  constructor(private readonly address: string | undefined) {}

  clientIp(): string | undefined {
    return this.address;
  }
  header(): undefined {
    return undefined;
  }
  cookie(): undefined {
    return undefined;
  }
  path(): string {
    return '/';
  }
  query(): undefined {
    return undefined;
  }
  pin(): void {}
}
