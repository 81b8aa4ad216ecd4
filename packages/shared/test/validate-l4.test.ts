import { describe, expect, it } from 'vitest';
import { parseCidr } from '../src/config/cidr.js';
import { validateConfig, validateListener } from '../src/config/validate.js';

function base(extra: { pools?: Record<string, unknown>; routes?: Record<string, unknown>; listeners?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    pools: {
      web: { backends: [{ id: 'a', address: '127.0.0.1:9001' }] },
      db: { algorithm: 'ip_hash', backends: [{ id: 'a', address: '127.0.0.1:5432' }] },
      ...extra.pools,
    },
    routes: { main: { pools: [{ pool: 'web' }] }, db: { listeners: ['db'], pools: [{ pool: 'db' }] }, ...extra.routes },
    listeners: { db: { port: 15432, protocol: 'tcp' }, tls: { port: 8443, protocol: 'tls-passthrough' }, ...extra.listeners },
  };
}

function errorsOf(input: unknown): Array<{ field: string; message: string }> {
  const result = validateConfig(input);
  return result.ok ? [] : result.errors;
}

describe('L4 listeners', () => {
  it('take tcp and tls-passthrough with their own fields, and fill no defaults into any listener', () => {
    const result = validateConfig(
      base({
        listeners: {
          db: { port: 15432, protocol: 'tcp', idleTimeoutMs: 5000, maxConnections: 10, acceptProxyProtocol: { trustedSources: ['10.0.0.0/8', '::1'] } },
        },
      }),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.listeners?.tls).toEqual({ port: 8443, protocol: 'tls-passthrough' });
  });

  it('refuse L4 fields on HTTP listeners, tls on L4 ones, a hello timeout on a tcp listener with nothing to read, bad CIDRs', () => {
    expect(validateListener({ port: 80, protocol: 'http', idleTimeoutMs: 5000 })).toEqual({
      ok: false,
      errors: [{ field: 'idleTimeoutMs', message: 'is only used by tcp and tls-passthrough listeners' }],
    });
    expect(errorsOf(base({ listeners: { db: { port: 15432, protocol: 'tcp', tls: { certificates: ['x'] } } } })).map((e) => e.field)).toContain(
      'listeners.db.tls',
    );
    expect(errorsOf(base({ listeners: { db: { port: 15432, protocol: 'tcp', helloTimeoutMs: 1000 } } }))).toEqual([
      { field: 'listeners.db.helloTimeoutMs', message: 'is only used by tls-passthrough listeners or with acceptProxyProtocol' },
    ]);
    const bad = errorsOf(
      base({ listeners: { db: { port: 15432, protocol: 'tcp', acceptProxyProtocol: { trustedSources: ['10.0.0.0/33', 'example.com'] } } } }),
    );
    expect(bad.map((e) => e.field)).toEqual(['listeners.db.acceptProxyProtocol.trustedSources[0]', 'listeners.db.acceptProxyProtocol.trustedSources[1]']);
  });
});

describe('routes of L4 listeners', () => {
  it('refuse HTTP-only fields, naming each', () => {
    const errors = errorsOf(
      base({
        routes: {
          db: {
            listeners: ['db'],
            pools: [{ pool: 'db' }],
            match: { pathPrefix: '/x', methods: ['GET'] },
            hsts: {},
            rateLimit: { requestsPerSecond: 1 },
            websocket: {},
            forwarded: true,
          },
        },
      }),
    );
    expect(errors.map((e) => e.field).sort()).toEqual([
      'routes.db.forwarded',
      'routes.db.hsts',
      'routes.db.match.methods',
      'routes.db.match.pathPrefix',
      'routes.db.rateLimit',
      'routes.db.websocket',
    ]);
    expect(errors[0]!.message).toMatch(/HTTP-only/);
  });

  it('match the SNI on tls-passthrough only, never mix HTTP and L4 listeners, and keep pools apart', () => {
    expect(errorsOf(base({ routes: { db: { listeners: ['db'], pools: [{ pool: 'db' }], match: { host: 'db.example' } } } })).map((e) => e.field)).toEqual([
      'routes.db.match.host',
    ]);
    expect(errorsOf(base({ routes: { sni: { listeners: ['tls'], pools: [{ pool: 'db' }], match: { host: '*.example' } } } }))).toEqual([]);
    expect(errorsOf(base({ routes: { db: { listeners: ['db', 'default'], pools: [{ pool: 'db' }] } } })).map((e) => e.field)).toContain(
      'routes.db.listeners[1]',
    );
    expect(errorsOf(base({ routes: { db: { listeners: ['db'], pools: [{ pool: 'web' }] } } })).map((e) => e.field)).toEqual(['routes.db.pools[0].pool']);
  });

  it('are ambiguous only with routes of the same listener: a route without listeners serves HTTP ones only', () => {
    expect(errorsOf(base({ routes: { db2: { listeners: ['db'], pools: [{ pool: 'db' }] } } })).map((e) => e.field)).toEqual(['routes.db2.match']);
    // `main` (no listeners, no match) and `db` (match {}) have the same match but no listener in common.
    expect(errorsOf(base())).toEqual([]);
  });
});

describe('pools of L4 routes', () => {
  it('refuse what needs HTTP: sticky, tls, response-learning algorithms, non-ip hashes, error-rate breakers', () => {
    const errors = errorsOf(
      base({
        pools: {
          db: { algorithm: 'consistent_hash', hashOn: { source: 'header', name: 'x' }, sticky: {}, tls: {}, circuitBreaker: { errorRate: {} }, backends: [] },
        },
      }),
    );
    expect(errors.map((e) => e.field).sort()).toEqual(['pools.db.circuitBreaker.errorRate', 'pools.db.hashOn.source', 'pools.db.sticky', 'pools.db.tls']);
    expect(errorsOf(base({ pools: { db: { algorithm: 'least_response_time', backends: [] } } })).map((e) => e.field)).toEqual(['pools.db.algorithm']);
  });

  it('take proxyProtocol, which HTTP routes cannot use', () => {
    expect(errorsOf(base({ pools: { db: { proxyProtocol: 'v2', backends: [] } } }))).toEqual([]);
    expect(errorsOf(base({ pools: { web: { proxyProtocol: 'v1', backends: [] } } })).map((e) => e.field)).toEqual(['pools.web.proxyProtocol']);
    expect(errorsOf(base({ pools: { db: { proxyProtocol: 'v3', backends: [] } } })).map((e) => e.field)).toEqual(['pools.db.proxyProtocol']);
  });
});

describe('parseCidr', () => {
  it('reads blocks and bare addresses, and says what is wrong otherwise', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(parseCidr('10.0.0.1/40')).toBe('the prefix length must be 0..32');
    expect(parseCidr('nope/8')).toBe('"nope" is not an IPv4 or IPv6 address');
  });
});
