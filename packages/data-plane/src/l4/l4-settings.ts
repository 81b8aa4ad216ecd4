/**
 * What a tcp or tls-passthrough listener of a snapshot runs with, compiled once per snapshot from
 * its config (defaults filled in, trusted sources as a BlockList) and replaced whole on the running
 * listener: connections already open read the new idle timeout on their next tick.
 */
import { BlockList } from 'node:net';
import { isL4Protocol, L4_LISTENER_DEFAULTS, type Listener, parseCidr } from '@lb/shared';
import { unmapIPv4 } from './proxy-protocol-header.js';

export interface L4ListenerSettings {
  /** Read the ClientHello and route on its SNI. */
  readonly passthrough: boolean;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly helloTimeoutMs: number;
  /** Set with acceptProxyProtocol: who may connect (and must send a PROXY header). */
  readonly trustedSources: BlockList | undefined;
}

/** undefined for HTTP listeners. The listener has passed validation (its CIDRs parse). */
export function compileL4Listener(listener: Listener): L4ListenerSettings | undefined {
  if (!isL4Protocol(listener.protocol)) return undefined;
  let trustedSources: BlockList | undefined;
  if (listener.acceptProxyProtocol !== undefined) {
    trustedSources = new BlockList();
    for (const source of listener.acceptProxyProtocol.trustedSources) {
      const cidr = parseCidr(source);
      if (typeof cidr !== 'string') trustedSources.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
  }
  return {
    passthrough: listener.protocol === 'tls-passthrough',
    idleTimeoutMs: listener.idleTimeoutMs ?? L4_LISTENER_DEFAULTS.idleTimeoutMs,
    maxConnections: listener.maxConnections ?? L4_LISTENER_DEFAULTS.maxConnections,
    helloTimeoutMs: listener.helloTimeoutMs ?? L4_LISTENER_DEFAULTS.helloTimeoutMs,
    trustedSources,
  };
}

/** Whether a connection from `address` may send a PROXY header (IPv4-mapped addresses checked as IPv4). */
export function isTrustedSource(trusted: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = unmapIPv4(address);
  return trusted.check(plain, plain.includes(':') ? 'ipv6' : 'ipv4');
}
