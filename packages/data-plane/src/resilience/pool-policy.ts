/**
 * The resilience settings of a pool and of each route × pool pair, compiled once per snapshot
 * from config (defaults filled from RESILIENCE_DEFAULTS) into what the request path reads. State
 * that must survive a recompile — in-flight counters, the retry budget's window, breakers — is
 * carried over from the previous table's pool of the same name.
 */
import { RESILIENCE_DEFAULTS, type BreakerLimits, type ErrorRateBreaker as ErrorRateSettings, type Pool, type Route } from '@lb/shared';
import type { BackendRuntime } from '../balancer/host.js';
import type { Clock } from '../runtime/clock.js';
import type { UpstreamSettings } from '../upstream/upstream-pools.js';
import { ErrorRateBreaker, type LoadCounters } from './circuit-breaker.js';
import { RateLimiter } from './rate-limiter.js';
import { RetryBudget } from './retry-budget.js';
import { compileRetry, type CompiledRetry } from './retry-policy.js';
import type { PoolResilienceStats, ResilienceStats } from './resilience-stats.js';

/** What a request of one route to one pool follows. */
export interface TargetPolicy {
  readonly retry: CompiledRetry;
  /** undici headersTimeout and bodyTimeout per attempt (ms); 0: none. */
  readonly requestMs: number;
}

export interface PoolResilience {
  readonly limits: BreakerLimits;
  readonly backendLimits: BreakerLimits;
  /** The pool's in-flight counters (all its backends together). */
  readonly load: LoadCounters;
  readonly budget: RetryBudget;
  readonly stats: PoolResilienceStats;
  /** Connection settings of the pool's upstreams. */
  readonly upstream: UpstreamSettings;
  /** The pool's own policy, for routes that do not override it. */
  readonly policy: TargetPolicy;
  readonly errorRate: ErrorRateSettings | undefined;
}

export function compilePoolResilience(name: string, pool: Pool, previous: PoolResilience | undefined, stats: ResilienceStats, clock: Clock): PoolResilience {
  const timeouts = pool.timeouts ?? RESILIENCE_DEFAULTS.timeouts;
  const retry = pool.retry ?? RESILIENCE_DEFAULTS.retry;
  const breaker = pool.circuitBreaker ?? RESILIENCE_DEFAULTS.circuitBreaker;
  const budget = previous?.budget ?? new RetryBudget(retry.budgetPercent, retry.minRetriesPerSecond, clock);
  budget.configure(retry.budgetPercent, retry.minRetriesPerSecond);
  return {
    limits: { maxConnections: breaker.maxConnections, maxPendingRequests: breaker.maxPendingRequests, maxRequests: breaker.maxRequests },
    backendLimits: breaker.perBackend,
    load: previous?.load ?? { active: 0, pending: 0 },
    budget,
    stats: stats.pool(name),
    upstream: { connectTimeoutMs: timeouts.connectMs, keepAliveTimeoutMs: timeouts.idleMs, connections: breaker.perBackend.maxConnections },
    policy: { retry: compileRetry(retry), requestMs: timeouts.requestMs },
    errorRate: breaker.errorRate,
  };
}

/** Points a backend's runtime at its error-rate breaker (kept across tables), or at none. */
export function attachBreaker(runtime: BackendRuntime, resilience: PoolResilience, clock: Clock): void {
  const settings = resilience.errorRate;
  if (settings === undefined) runtime.breaker = null;
  else if (runtime.breaker !== null) runtime.breaker.configure(settings);
  else runtime.breaker = new ErrorRateBreaker(settings, clock, resilience.stats);
}

/** The policy of `route` towards a pool: the pool's, with the route's overrides. */
export function targetPolicy(route: Route, pool: PoolResilience): TargetPolicy {
  if (route.retry === undefined && route.timeouts === undefined) return pool.policy;
  return {
    retry: route.retry === undefined ? pool.policy.retry : compileRetry(route.retry),
    requestMs: route.timeouts?.requestMs ?? pool.policy.requestMs,
  };
}

/** A route's rate limiter, kept across tables while its settings stay the same (so are its buckets). */
export function routeRateLimiter(route: Route, previous: RateLimiter | undefined): RateLimiter | undefined {
  const limit = route.rateLimit;
  if (limit === undefined) return undefined;
  if (previous !== undefined && JSON.stringify(previous.settings) === JSON.stringify(limit)) return previous;
  return new RateLimiter(limit);
}
