import { describe, expect, it } from 'vitest';
import { RESILIENCE_DEFAULTS } from '../src/config/model.js';
import { validateConfig, validatePool, validateRoute } from '../src/config/validate.js';

const backends = [{ id: 'a', address: '127.0.0.1:9001' }];
const pools = { web: { backends } };

function poolErrors(input: unknown) {
  const result = validatePool(input);
  return result.ok ? [] : result.errors;
}

function routeErrors(input: unknown) {
  const result = validateRoute(input, pools as never);
  return result.ok ? [] : result.errors;
}

describe('pool resilience settings', () => {
  it('leaves timeouts, retry and circuitBreaker absent: every pool gets RESILIENCE_DEFAULTS', () => {
    const result = validatePool({ backends });
    expect(result.ok && Object.keys(result.value)).toEqual(['backends', 'algorithm']);
  });

  it('fills the documented defaults into blocks that are present', () => {
    const result = validatePool({ backends, timeouts: {}, retry: {}, circuitBreaker: {} });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.timeouts).toEqual(RESILIENCE_DEFAULTS.timeouts);
    expect(result.value.timeouts).toEqual({ connectMs: 1000, requestMs: 15000, idleMs: 60000 });
    expect(result.value.retry).toEqual(RESILIENCE_DEFAULTS.retry);
    expect(result.value.retry).toEqual({
      attempts: 2,
      on: ['connect-failure', 'reset', '503', 'gateway-error'],
      backoffMs: 25,
      maxBackoffMs: 250,
      budgetPercent: 20,
      minRetriesPerSecond: 3,
    });
    expect(result.value.circuitBreaker).toEqual(RESILIENCE_DEFAULTS.circuitBreaker);
    expect(result.value.circuitBreaker).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      perBackend: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 },
    });
  });

  it('fills the error-rate breaker defaults', () => {
    const result = validatePool({ backends, circuitBreaker: { errorRate: {} } });
    expect(result.ok && result.value.circuitBreaker?.errorRate).toEqual({
      thresholdPercent: 50,
      minRequests: 20,
      windowMs: 10000,
      openMs: 5000,
      trialRequests: 3,
    });
  });

  it('accepts a full set of fields', () => {
    const result = validatePool({
      backends,
      timeouts: { connectMs: 250, requestMs: 0, idleMs: 5000 },
      retry: {
        attempts: 4,
        on: ['5xx', 'reset'],
        backoffMs: 0,
        maxBackoffMs: 0,
        budgetPercent: 12.5,
        minRetriesPerSecond: 0,
        idempotencyHeader: 'Idempotency-Key',
      },
      circuitBreaker: {
        maxConnections: 10,
        maxPendingRequests: 0,
        maxRequests: 20,
        perBackend: { maxRequests: 5 },
        errorRate: { thresholdPercent: 10, minRequests: 5, windowMs: 1000, openMs: 100, trialRequests: 1 },
      },
    });
    expect(result.ok).toBe(true);
  });

  it('names every bad field with a clear message', () => {
    const found = poolErrors({
      backends,
      timeouts: { connectMs: 0, requestMs: -1, idleMs: 1.5, total: 1 },
      retry: { attempts: 0, on: ['teapot', 'reset', 'reset'], budgetPercent: 101, idempotencyHeader: 'bad header' },
      circuitBreaker: { maxRequests: 0, perBackend: { maxConnections: 0 }, errorRate: { thresholdPercent: 0, windowMs: 10 } },
    });
    expect(found).toEqual(
      expect.arrayContaining([
        { field: 'timeouts.connectMs', message: 'must be >= 1' },
        { field: 'timeouts.requestMs', message: 'must be >= 0' },
        { field: 'timeouts.idleMs', message: 'must be integer' },
        { field: 'timeouts.total', message: 'unknown field' },
        { field: 'retry.attempts', message: 'must be >= 1' },
        { field: 'retry.on[0]', message: 'must be one of: connect-failure, reset, 503, gateway-error, 5xx' },
        { field: 'retry.on', message: 'must not list the same value twice' },
        { field: 'retry.budgetPercent', message: 'must be <= 100' },
        { field: 'retry.idempotencyHeader', message: "must be an HTTP token: letters, digits and !#$%&'*+-.^_`|~" },
        { field: 'circuitBreaker.maxRequests', message: 'must be >= 1' },
        { field: 'circuitBreaker.perBackend.maxConnections', message: 'must be >= 1' },
        { field: 'circuitBreaker.errorRate.thresholdPercent', message: 'must be >= 1' },
        { field: 'circuitBreaker.errorRate.windowMs', message: 'must be >= 1000' },
      ]),
    );
  });

  it('wants maxBackoffMs at least backoffMs', () => {
    expect(poolErrors({ backends, retry: { backoffMs: 500 } })).toEqual([{ field: 'retry.maxBackoffMs', message: 'must be at least backoffMs (500)' }]);
  });
});

describe('route rate limits and overrides', () => {
  it('defaults key to ip and burst to requestsPerSecond rounded up (at least 1)', () => {
    const a = validateRoute({ pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 2.5 } }, pools as never);
    expect(a.ok && a.value.rateLimit).toEqual({ requestsPerSecond: 2.5, burst: 3, key: 'ip' });
    const b = validateRoute({ pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 0.2, burst: 7, key: 'header', header: 'x-api-key' } }, pools as never);
    expect(b.ok && b.value.rateLimit).toEqual({ requestsPerSecond: 0.2, burst: 7, key: 'header', header: 'x-api-key' });
    const c = validateRoute({ pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 0.2 } }, pools as never);
    expect(c.ok && c.value.rateLimit?.burst).toBe(1);
  });

  it('names bad rate limits', () => {
    expect(routeErrors({ pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 0, burst: 0, key: 'cookie' } })).toEqual(
      expect.arrayContaining([
        { field: 'rateLimit.requestsPerSecond', message: 'must be > 0' },
        { field: 'rateLimit.burst', message: 'must be >= 1' },
        { field: 'rateLimit.key', message: 'must be one of: ip, header' },
      ]),
    );
    expect(routeErrors({ pools: [{ pool: 'web' }], rateLimit: {} })).toEqual([{ field: 'rateLimit.requestsPerSecond', message: 'is required' }]);
    expect(routeErrors({ pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 1, key: 'header' } })).toEqual([
      { field: 'rateLimit.header', message: 'is required when key is header' },
    ]);
    expect(routeErrors({ pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 1, header: 'x-a' } })).toEqual([
      { field: 'rateLimit.header', message: 'is not used when key is ip' },
    ]);
  });

  it('takes timeouts and retry overrides, with the same rules as pools', () => {
    const ok = validateRoute({ pools: [{ pool: 'web' }], timeouts: { requestMs: 500 }, retry: { attempts: 1 } }, pools as never);
    expect(ok.ok && ok.value.timeouts).toEqual({ requestMs: 500 });
    expect(routeErrors({ pools: [{ pool: 'web' }], timeouts: { connectMs: 5 } })).toEqual(
      expect.arrayContaining([{ field: 'timeouts.connectMs', message: 'unknown field' }]),
    );
    expect(routeErrors({ pools: [{ pool: 'web' }], timeouts: {} })).toEqual([{ field: 'timeouts.requestMs', message: 'is required' }]);
    expect(ok.ok && ok.value.retry?.attempts).toBe(1);
    expect(routeErrors({ pools: [{ pool: 'web' }], retry: { backoffMs: 10, maxBackoffMs: 5 } })).toEqual([
      { field: 'retry.maxBackoffMs', message: 'must be at least backoffMs (10)' },
    ]);
    expect(routeErrors({ pools: [{ pool: 'web' }], circuitBreaker: {} })).toEqual([{ field: 'circuitBreaker', message: 'unknown field' }]);
  });

  it('reports fields with their full path in a whole config', () => {
    const result = validateConfig({ pools, routes: { r: { pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: -1 } } } });
    expect(result.ok ? [] : result.errors).toEqual([{ field: 'routes.r.rateLimit.requestsPerSecond', message: 'must be > 0' }]);
  });
});
