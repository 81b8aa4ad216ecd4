import { describe, expect, it } from 'vitest';
import { validateConfig, validatePool } from '../src/config/validate.js';

function fieldsOf(input: unknown): string[] {
  const result = validateConfig(input);
  return result.ok ? [] : result.errors.map((e) => `${e.field}: ${e.message}`);
}

const routes = { main: { pools: [{ pool: 'web' }] } };

describe('HTTP/2 in the config (issue 12)', () => {
  it('takes h2 in a listener ALPN list and h2c on a plain listener, and refuses h2c over TLS', () => {
    const ok = validateConfig({ pools: { web: { backends: [] } }, routes, listeners: { plain: { port: 8080, protocol: 'http', h2c: true } } });
    expect(ok.ok).toBe(true);
    const wrong = fieldsOf({
      pools: { web: { backends: [] } },
      routes,
      certificates: {},
      listeners: { s: { port: 8443, protocol: 'https', h2c: true, tls: { certificates: ['x'], alpn: ['h2', 'http/1.1'] } } },
    });
    expect(wrong.some((e) => e.startsWith('listeners.s.h2c:'))).toBe(true);
    expect(wrong.some((e) => e.startsWith('listeners.s.tls.alpn'))).toBe(false);
  });

  it('takes a pool protocol: http2 needs tls, h2c refuses it, stream limits only for HTTP/2', () => {
    expect(validatePool({ protocol: 'h2c', maxStreamsPerConnection: 50, backends: [] }).ok).toBe(true);
    expect(validatePool({ protocol: 'http2', tls: {}, backends: [] }).ok).toBe(true);
    const cases: Array<[unknown, string]> = [
      [{ protocol: 'http2', backends: [] }, 'tls'],
      [{ protocol: 'h2c', tls: {}, backends: [] }, 'protocol'],
      [{ maxStreamsPerConnection: 10, backends: [] }, 'maxStreamsPerConnection'],
      [{ protocol: 'spdy', backends: [] }, 'protocol'],
      [{ protocol: 'h2c', maxStreamsPerConnection: 0, backends: [] }, 'maxStreamsPerConnection'],
    ];
    for (const [pool, field] of cases) {
      const result = validatePool(pool);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.errors.map((e) => e.field)).toContain(field);
    }
    // Absent: HTTP/1.1, and nothing is added to the stored pool.
    const plain = validatePool({ backends: [] });
    expect(plain.ok && plain.value.protocol).toBe(undefined);
  });
});

describe('HTTP/2 beside L4 listeners', () => {
  it('refuses h2c on a tcp listener and an HTTP/2 protocol on a pool an L4 route uses', () => {
    const errors = fieldsOf({
      pools: { raw: { protocol: 'h2c', backends: [] } },
      routes: { raw: { listeners: ['tcp'], pools: [{ pool: 'raw' }] } },
      listeners: { tcp: { port: 9000, protocol: 'tcp', h2c: true } },
    });
    expect(errors.some((e) => e.startsWith('listeners.tcp.h2c:'))).toBe(true);
    expect(errors.some((e) => e.startsWith('pools.raw.protocol:'))).toBe(true);
  });
});
