/**
 * The immutable routing table compiled from one config version. The request path asks it one
 * question — which route serves this Host and path — and then picks a pool and a backend from
 * balancers built here. Nothing in it changes after compilation; a new snapshot builds a new table
 * and swaps it in with one reference assignment.
 *
 * Matching rules:
 * - Host: case-insensitive, port and trailing dot ignored. An exact host beats a `*.example.com`
 *   wildcard (longer wildcard suffix first; `*.example.com` matches `a.example.com` and
 *   `a.b.example.com`, not `example.com`), which beats routes without a host.
 * - Path: `pathPrefix` is a plain string prefix of the path (the part before `?`), like Envoy's
 *   `prefix`: `/api` matches `/api`, `/api/x` and `/apix`. Absent means `/`. Longest prefix wins.
 * - A request tries the routes of its most specific host tier first, longest prefix first, and then
 *   falls back to the less specific tiers: `api.example.com/other` reaches a catch-all `/` route
 *   when the `api.example.com` routes only cover `/v1`. The merged list per host is built here, so
 *   a lookup is one map read plus a short scan.
 */
import { resourceKey, type Algorithm, type BackendState, type Config, type VersionedConfig } from '@lb/shared';
import { EMPTY_PICK_CONTEXT, type Balancer, type PickContext } from '../balancer/balancer.js';
import { createBalancer, poolFeedback, type BalancerDeps, type PoolFeedback } from '../balancer/factory.js';
import { BackendRuntime, type Host } from '../balancer/host.js';
import { SmoothWeightedRoundRobin } from '../balancer/smooth-weighted-round-robin.js';
import type { DataPlaneMetrics, RequestStats, UpstreamErrorStats } from '../metrics.js';
import { systemClock, type Clock, type Random } from '../runtime/clock.js';
import { upstreamKey, type UpstreamSource } from '../upstream/upstream-pools.js';
import type { Upstream } from '../upstream/upstream.js';
import { attachBreaker, compilePoolResilience, routeRateLimiter, targetPolicy, type PoolResilience, type TargetPolicy } from '../resilience/pool-policy.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { RouteList } from './route-list.js';

export interface CompiledBackend {
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  readonly state: BackendState;
  /** Set for active backends only: the others never receive a new request. */
  readonly upstream: Upstream | undefined;
  /** In-flight count, latency, reported load: carried over to the next table for the same pool and id. */
  readonly runtime: BackendRuntime;
}

export interface CompiledPool {
  readonly name: string;
  readonly algorithm: Algorithm;
  /** Every backend of the pool in config order, whatever its state (for /config). */
  readonly backends: readonly CompiledBackend[];
  /** Chooses among the active backends only. */
  /**
   * Chooses among the eligible hosts (health/host-eligibility.ts). The one mutable field: replaced
   * whole (one reference assignment) when health, ejections or slow start change the hosts.
   */
  balancer: Balancer<Host<CompiledBackend>>;
  /** The pool's config and balancer deps, for rebuilding the balancer outside a compile. */
  readonly settings: Config['pools'][string];
  readonly balancerDeps: BalancerDeps;
  /** What the forwarder measures for the algorithm (latency, load header); undefined: nothing. */
  readonly feedback: PoolFeedback | undefined;
  readonly errors: UpstreamErrorStats;
  /** Timeouts, retry policy and budget, circuit-breaker limits and counters. */
  readonly resilience: PoolResilience;
  /** The pool's resource hash (or its JSON, compiled without hashes): an unchanged pool is reused by the next table, balancer position and all. */
  readonly source: string;
  /** The upstream pools (upstreamKey) its active backends send to. */
  readonly upstreamKeys: readonly string[];
}

export interface RouteTarget {
  readonly pool: CompiledPool;
  readonly weight: number;
  readonly stats: RequestStats;
  /** Retries and request timeout: the pool's, with the route's overrides. */
  readonly policy: TargetPolicy;
}

export interface CompiledRoute {
  readonly name: string;
  /** Lower-cased; `*.example.com` for wildcards; undefined for any host. */
  readonly host: string | undefined;
  readonly pathPrefix: string;
  /** The route's pools with weight > 0, in config order. */
  readonly targets: readonly RouteTarget[];
  /** Smooth weighted round robin over targets by weight. */
  readonly chooser: Balancer<RouteTarget>;
  /** Counts requests answered 503 because no pool of this route had an active backend. */
  readonly noBackend: RequestStats;
  /** The route's per-client token buckets; undefined: no rate limit. */
  readonly rateLimiter: RateLimiter | undefined;
  /** Requests answered 429 (bump `.n`). */
  readonly rateLimited: { n: number };
}

/** `Example.COM:8080` → `example.com`; `[::1]:80` → `[::1]`. */
export function normalizeHost(value: string): string {
  let host = value;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    if (close > 0) host = host.slice(0, close + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  if (host.charCodeAt(host.length - 1) === 46 /* . */) host = host.slice(0, -1);
  return host.toLowerCase();
}

export class RoutingTable {
  constructor(
    readonly version: number,
    readonly config: Config,
    readonly pools: ReadonlyMap<string, CompiledPool>,
    readonly routes: ReadonlyMap<string, CompiledRoute>,
    private readonly exact: ReadonlyMap<string, RouteList>,
    /** By suffix with its leading dot: `.example.com` for `*.example.com`. */
    private readonly wildcards: ReadonlyMap<string, RouteList>,
    private readonly anyHost: RouteList,
  ) {}

  /**
   * The route for a request. `host` must already be normalized (normalizeHost) or undefined when
   * the request had none; `url` is the request target as received (`/path?query`).
   */
  match(host: string | undefined, url: string): CompiledRoute | undefined {
    let candidates = this.anyHost;
    if (host !== undefined) {
      const exact = this.exact.get(host);
      if (exact !== undefined) candidates = exact;
      else if (this.wildcards.size > 0) {
        // Longest wildcard suffix first: try the host's suffixes from its first dot on (one map
        // read per label, however many wildcards there are). `*.a.com` needs a label before `.a.com`.
        for (let dot = host.indexOf('.', 1); dot > 0; dot = host.indexOf('.', dot + 1)) {
          const w = this.wildcards.get(host.slice(dot));
          if (w !== undefined) {
            candidates = w;
            break;
          }
        }
      }
    }
    return candidates.find(url);
  }

  /** Upstream pools the table can send to (active backends), by upstreamKey(). */
  addresses(): Set<string> {
    const out = new Set<string>();
    for (const pool of this.pools.values()) for (const key of pool.upstreamKeys) out.add(key);
    return out;
  }
}

export interface CompileDeps {
  upstreams: UpstreamSource;
  metrics: DataPlaneMetrics;
  random: Random;
  clock?: Clock;
  /** Signs sticky cookies; the same on every data plane. */
  stickySecret?: string | undefined;
  /** The table being replaced: unchanged pools are taken over from it. */
  previous?: RoutingTable | undefined;
  /**
   * Resource hashes of the config (`pools/<name>` → hash, see AppliedConfig): a pool is reused when
   * its hash is the previous table's. Absent: pools are compared by their JSON (slower on large pools).
   */
  resourceHashes?: ReadonlyMap<string, string> | undefined;
  /** The hosts a pool's balancer may pick, with effective weights (health, panic, slow start); default: every active backend at its weight. */
  hosts?: ((pool: string, settings: Config['pools'][string], backends: readonly CompiledBackend[]) => Host<CompiledBackend>[]) | undefined;
}

function compilePool(name: string, pool: Config['pools'][string], deps: CompileDeps): CompiledPool {
  const source = deps.resourceHashes?.get(resourceKey('pools', name)) ?? JSON.stringify(pool);
  const reused = deps.previous?.pools.get(name);
  if (reused !== undefined && reused.source === source) return reused;
  const clock = deps.clock ?? systemClock;
  const resilience = compilePoolResilience(name, pool, reused?.resilience, deps.metrics.resilience, clock);
  const runtimes = new Map<string, BackendRuntime>();
  for (const b of reused?.backends ?? []) runtimes.set(b.id, b.runtime);
  const backends: CompiledBackend[] = pool.backends.map((b) => ({
    id: b.id,
    address: b.address,
    weight: b.weight,
    state: b.state,
    upstream: b.state === 'active' ? deps.upstreams.acquire(b.address, resilience.upstream) : undefined,
    runtime: runtimes.get(b.id) ?? new BackendRuntime(),
  }));
  for (const b of backends) attachBreaker(b.runtime, resilience, clock);
  const hosts: Host<CompiledBackend>[] = [];
  if (deps.hosts !== undefined) hosts.push(...deps.hosts(name, pool, backends));
  else for (const b of backends) if (b.upstream !== undefined) hosts.push({ backend: b, id: b.id, weight: b.weight, runtime: b.runtime });
  const balancerDeps: BalancerDeps = { random: deps.random, clock: deps.clock ?? systemClock, poolName: name, stickySecret: deps.stickySecret };
  return {
    name,
    algorithm: pool.algorithm,
    backends,
    balancer: createBalancer(pool, hosts, balancerDeps),
    settings: pool,
    balancerDeps,
    feedback: poolFeedback(pool),
    errors: deps.metrics.upstreamErrors(name),
    resilience,
    source,
    upstreamKeys: backends.filter((b) => b.upstream !== undefined).map((b) => upstreamKey(b.address, resilience.upstream)),
  };
}

/** Sort key: host tier (exact, wildcard by longer suffix, any), then longer prefix, then name. */
function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  return tierOf(a) - tierOf(b) || b.pathPrefix.length - a.pathPrefix.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function tierOf(route: CompiledRoute): number {
  if (route.host === undefined) return 2_000;
  if (route.host.startsWith('*.')) return 1_000 - route.host.length;
  return 0;
}

/**
 * Compiles a validated config. Throws only on a bug (the config has passed validateConfig);
 * callers turn that into a NACK.
 */
export function compileRoutingTable(input: VersionedConfig, deps: CompileDeps): RoutingTable {
  const { config } = input;
  const pools = new Map<string, CompiledPool>();
  for (const [name, pool] of Object.entries(config.pools)) pools.set(name, compilePool(name, pool, deps));

  const routes = new Map<string, CompiledRoute>();
  for (const [name, route] of Object.entries(config.routes)) {
    const targets: RouteTarget[] = [];
    for (const p of route.pools) {
      const pool = pools.get(p.pool);
      if (pool === undefined) throw new Error(`route "${name}" names missing pool "${p.pool}"`);
      if (p.weight > 0) targets.push({ pool, weight: p.weight, stats: deps.metrics.requestStats(name, p.pool), policy: targetPolicy(route, pool.resilience) });
    }
    let host = route.match.host?.toLowerCase();
    if (host?.endsWith('.')) host = host.slice(0, -1);
    routes.set(name, {
      name,
      host,
      pathPrefix: route.match.pathPrefix ?? '/',
      targets,
      chooser: new SmoothWeightedRoundRobin(
        targets,
        targets.map((t) => t.weight),
        { random: deps.random },
      ),
      noBackend: deps.metrics.requestStats(name, ''),
      rateLimiter: routeRateLimiter(route, deps.previous?.routes.get(name)?.rateLimiter),
      rateLimited: deps.metrics.resilience.route(name),
    });
  }

  const all = [...routes.values()];
  const anyHost = all.filter((r) => r.host === undefined).sort(compareRoutes);
  const wildcardRoutes = all.filter((r) => r.host?.startsWith('*.'));
  const matchingWildcards = (host: string) => wildcardRoutes.filter((r) => host.length > r.host!.length - 1 && host.endsWith(r.host!.slice(1)));

  const exact = new Map<string, RouteList>();
  for (const r of all) {
    if (r.host === undefined || r.host.startsWith('*.') || exact.has(r.host)) continue;
    const own = all.filter((o) => o.host === r.host);
    exact.set(r.host, new RouteList([...own, ...matchingWildcards(r.host), ...anyHost].sort(compareRoutes), tierOf));
  }
  const wildcards = new Map<string, RouteList>();
  for (const suffix of new Set(wildcardRoutes.map((r) => r.host!.slice(1)))) {
    // Every host this wildcard matches also matches the shorter wildcards it ends with.
    wildcards.set(suffix, new RouteList([...wildcardRoutes.filter((r) => suffix.endsWith(r.host!.slice(1))), ...anyHost].sort(compareRoutes), tierOf));
  }

  return new RoutingTable(input.version, config, pools, routes, exact, wildcards, new RouteList(anyHost, tierOf));
}

/**
 * Picks a backend for a route: a pool by weight, then a backend by the pool's algorithm; when the
 * chosen pool has no active backend, the route's other pools are tried in order. `ctx` is the
 * request as hash-based and sticky pools read it. `retry`: the pick is for a retry, made through
 * pickForRetry where an algorithm takes turns, so that retries do not move fresh requests'
 * rotation on (Balancer.pickForRetry).
 */
export function pickBackend(
  route: CompiledRoute,
  out: { target: RouteTarget | undefined },
  ctx: PickContext = EMPTY_PICK_CONTEXT,
  retry = false,
): CompiledBackend | undefined {
  const first = choose(route.chooser, EMPTY_PICK_CONTEXT, retry);
  if (first !== undefined) {
    const host = choose(first.pool.balancer, ctx, retry);
    if (host !== undefined) {
      out.target = first;
      return host.backend;
    }
  }
  const targets = route.targets;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    const host = choose(t.pool.balancer, ctx, retry);
    if (host !== undefined) {
      out.target = t;
      return host.backend;
    }
  }
  out.target = undefined;
  return undefined;
}

function choose<T>(balancer: Balancer<T>, ctx: PickContext, retry: boolean): T | undefined {
  return retry && balancer.pickForRetry !== undefined ? balancer.pickForRetry(ctx) : balancer.pick(ctx);
}
