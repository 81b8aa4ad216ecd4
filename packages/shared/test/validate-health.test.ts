import { describe, expect, it } from 'vitest';
import { statusExpected, validateBackendRegistration, validateConfig, validatePool } from '../src/config/validate.js';

const backends = [{ id: 'a', address: '127.0.0.1:9001' }];

function errors(input: unknown) {
  const result = validatePool(input, '', { forWrite: true });
  return result.ok ? [] : result.errors;
}

describe('pool health settings', () => {
  it('fills the documented defaults into healthCheck and outlierDetection blocks', () => {
    const result = validatePool({ backends, healthCheck: {}, outlierDetection: {} });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.healthCheck).toEqual({
      type: 'http',
      path: '/health',
      intervalMs: 5000,
      timeoutMs: 2000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      expectedStatuses: [200],
    });
    expect(result.value.outlierDetection).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayErrors: 5,
      baseEjectionMs: 30000,
      maxEjectionPercent: 10,
      intervalMs: 10000,
    });
  });

  it('leaves the scalars absent (their defaults live in POOL_DEFAULTS) so stored pools keep their shape', () => {
    const result = validatePool({ backends });
    expect(result.ok && result.value).toEqual({ algorithm: 'round_robin', backends: [{ id: 'a', address: '127.0.0.1:9001', weight: 1, state: 'active' }] });
  });

  it('accepts the full set of fields', () => {
    const result = validatePool({
      backends,
      healthCheck: {
        type: 'grpc',
        intervalMs: 300,
        timeoutMs: 200,
        healthyThreshold: 1,
        unhealthyThreshold: 2,
        expectedStatuses: [200, '300-399'],
        host: 'svc.local',
        port: 9090,
      },
      outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 0, baseEjectionMs: 1000, maxEjectionPercent: 50, intervalMs: 500 },
      panicThresholdPercent: 0,
      slowStartMs: 5000,
      drainTimeoutMs: 0,
    });
    expect(result.ok).toBe(true);
  });

  it('names every bad field with a clear message', () => {
    const found = errors({
      backends,
      healthCheck: { type: 'udp', path: 'health', intervalMs: 10, healthyThreshold: 0, expectedStatuses: [700, '200-x', '399-200'], colour: 1 },
      outlierDetection: { maxEjectionPercent: 101 },
      panicThresholdPercent: 150,
      slowStartMs: -1,
      drainTimeoutMs: 1.5,
    });
    expect(found).toEqual(
      expect.arrayContaining([
        { field: 'healthCheck.type', message: 'must be one of: http, tcp, grpc' },
        { field: 'healthCheck.path', message: 'must match ^/' },
        { field: 'healthCheck.intervalMs', message: 'must be >= 100' },
        { field: 'healthCheck.healthyThreshold', message: 'must be >= 1' },
        { field: 'healthCheck.expectedStatuses[0]', message: 'must be a status code (100-599) or a range such as "200-399"' },
        { field: 'healthCheck.expectedStatuses[1]', message: 'must be a status code (100-599) or a range such as "200-399"' },
        { field: 'healthCheck.colour', message: 'unknown field' },
        { field: 'outlierDetection.maxEjectionPercent', message: 'must be <= 100' },
        { field: 'panicThresholdPercent', message: 'must be <= 100' },
        { field: 'slowStartMs', message: 'must be >= 0' },
        { field: 'drainTimeoutMs', message: 'must be integer' },
      ]),
    );
  });

  it('refuses a probe timeout above the interval instead of clamping it', () => {
    expect(errors({ backends, healthCheck: { intervalMs: 1000, timeoutMs: 1500 } })).toEqual([
      { field: 'healthCheck.timeoutMs', message: 'must not exceed intervalMs (1000)' },
    ]);
    expect(errors({ backends, healthCheck: { timeoutMs: 6000 } })).toEqual([{ field: 'healthCheck.timeoutMs', message: 'must not exceed intervalMs (5000)' }]);
    expect(errors({ backends, healthCheck: { intervalMs: 1000, timeoutMs: 1000 } })).toEqual([]);
  });

  it('leaves such a timeout alone in stored configs (the data plane, whole-config checks), so an upgrade NACKs nothing', () => {
    // Before the rule, an interval under 2 s was stored with the default timeout of 2 s.
    const stored = { pools: { web: { backends, healthCheck: { intervalMs: 1000, timeoutMs: 2000 } } }, routes: {} };
    expect(validateConfig(stored).ok).toBe(true);
    expect(validateConfig(stored, '', { forWrite: true })).toEqual({
      ok: false,
      errors: [{ field: 'pools.web.healthCheck.timeoutMs', message: 'must not exceed intervalMs (1000)' }],
    });
  });

  it('defaults the probe timeout to 2 s, or to the interval when that is shorter', () => {
    const short = validatePool({ backends, healthCheck: { intervalMs: 500 } });
    expect(short.ok && short.value.healthCheck?.timeoutMs).toBe(500);
    const long = validatePool({ backends, healthCheck: { intervalMs: 60_000 } });
    expect(long.ok && long.value.healthCheck?.timeoutMs).toBe(2000);
  });

  it('refuses an empty status range once the structure is valid', () => {
    expect(errors({ backends, healthCheck: { expectedStatuses: ['399-200'] } })).toEqual([
      { field: 'healthCheck.expectedStatuses[0]', message: 'range "399-200" is empty: the first status must not exceed the second' },
    ]);
  });
});

describe('statusExpected', () => {
  it('matches numbers and inclusive ranges', () => {
    expect(statusExpected([200], 200)).toBe(true);
    expect(statusExpected([200], 204)).toBe(false);
    expect(statusExpected(['200-399'], 399)).toBe(true);
    expect(statusExpected(['200-399'], 400)).toBe(false);
    expect(statusExpected([204, '500-503'], 502)).toBe(true);
  });
});

describe('validateBackendRegistration', () => {
  it('splits the backend from its TTL and takes the id from the path', () => {
    expect(validateBackendRegistration({ address: '10.0.0.1:80', ttlSeconds: 10 }, 'r1')).toEqual({
      ok: true,
      value: { backend: { id: 'r1', address: '10.0.0.1:80', weight: 1, state: 'active' }, ttlSeconds: 10 },
    });
  });

  it('refuses a bad TTL, a bad address and a mismatched id', () => {
    const result = validateBackendRegistration({ id: 'other', address: 'nope', ttlSeconds: 0 }, 'r1');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([{ field: 'ttlSeconds', message: 'must be >= 1' }]);
    const second = validateBackendRegistration({ id: 'other', address: 'nope', ttlSeconds: 5 }, 'r1');
    expect(second.ok ? [] : second.errors.map((e) => e.field)).toEqual(['id', 'address']);
  });
});
