import { describe, expect, it } from 'vitest';
import { compileL4Listener, isTrustedSource } from '../src/l4/l4-settings.js';

describe('compileL4Listener', () => {
  it('fills the L4 defaults, and is undefined for HTTP listeners', () => {
    expect(compileL4Listener({ port: 80, protocol: 'http' })).toBeUndefined();
    expect(compileL4Listener({ port: 5432, protocol: 'tcp' })).toEqual({
      passthrough: false,
      idleTimeoutMs: 600_000,
      maxConnections: 10_000,
      helloTimeoutMs: 5_000,
      trustedSources: undefined,
    });
    expect(compileL4Listener({ port: 443, protocol: 'tls-passthrough', idleTimeoutMs: 1000 })).toMatchObject({ passthrough: true, idleTimeoutMs: 1000 });
  });

  it('trusts exactly the listed sources, IPv4-mapped addresses as IPv4', () => {
    const trusted = compileL4Listener({ port: 5432, protocol: 'tcp', acceptProxyProtocol: { trustedSources: ['10.0.0.0/8', '::1', '192.0.2.7'] } })!
      .trustedSources!;
    expect(isTrustedSource(trusted, '10.1.2.3')).toBe(true);
    expect(isTrustedSource(trusted, '::ffff:10.1.2.3')).toBe(true);
    expect(isTrustedSource(trusted, '::1')).toBe(true);
    expect(isTrustedSource(trusted, '192.0.2.7')).toBe(true);
    expect(isTrustedSource(trusted, '192.0.2.8')).toBe(false);
    expect(isTrustedSource(trusted, '11.0.0.1')).toBe(false);
    expect(isTrustedSource(trusted, undefined)).toBe(false);
  });
});
