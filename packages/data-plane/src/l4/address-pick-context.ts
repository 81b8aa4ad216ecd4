/**
 * The PickContext of an L4 connection: the client's address is all there is to hash (ip_hash,
 * consistent_hash and maglev on `ip`); validation refuses the other hash sources on L4 pools. The
 * address is read only when a balancer asks (a socket's remoteAddress is a getpeername call).
 */
import { EmptyPickContext } from '../balancer/balancer.js';

export class AddressPickContext extends EmptyPickContext {
  constructor(private readonly address: () => string | undefined) {
    super();
  }

  override clientIp(): string | undefined {
    return this.address();
  }
}
