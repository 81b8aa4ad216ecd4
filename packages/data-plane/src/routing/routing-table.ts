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
import {
  type Algorithm,
  type BackendState,
  type Config,
  DEFAULT_LISTENER,
  type Hsts,
  type HttpsRedirect,
  isL4Protocol,
  type Redirect,
  resourceKey,
  routeSpecificity,
  type VersionedConfig,
  WEBSOCKET_DEFAULTS,
  type WebSocketOptions,
} from '@lb/shared';
import { EMPTY_PICK_CONTEXT, type Balancer, type PickContext } from '../balancer/balancer.js';
import { createBalancer, poolFeedback, type BalancerDeps, type PoolFeedback } from '../balancer/factory.js';
import { BackendRuntime, type Host } from '../balancer/host.js';
import { SmoothWeightedRoundRobin } from '../balancer/smooth-weighted-round-robin.js';
import type { DataPlaneMetrics, RequestStats, UpstreamErrorStats } from '../metrics.js';
import type { LatencyHistogram } from '../metrics/histogram.js';
import { systemClock, type Clock, type Random } from '../runtime/clock.js';
import { upstreamKey, type UpstreamSettings, type UpstreamSource } from '../upstream/upstream-pools.js';
import type { UpstreamTls } from '../tls/upstream-tls.js';
import type { Upstream } from '../upstream/upstream.js';
import { attachBreaker, compilePoolResilience, routeRateLimiter, targetPolicy, type PoolResilience, type TargetPolicy } from '../resilience/pool-policy.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { type CompiledHeaderRules, compileHeaderRules } from './header-rules.js';
import { compileConditions, type RouteConditions, type RouteRequest } from './route-conditions.js';
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
  /** Time to response heads of the pool's backends (lb_dp_upstream_response_seconds). */
  readonly latency: LatencyHistogram;
  /** Timeouts, retry policy and budget, circuit-breaker limits and counters. */
  readonly resilience: PoolResilience;
  /** How its backends are reached: the resilience settings' connection part, and TLS. */
  readonly upstream: UpstreamSettings;
  /**
   * The pool's resource hash (or its JSON, compiled without hashes), with its TLS identity: an
   * unchanged pool is reused by the next table, balancer position and all.
   */
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
  /** Time from a request's arrival to the end of its response (lb_dp_request_duration_seconds). */
  readonly duration: LatencyHistogram;
  /** The route's per-client token buckets; undefined: no rate limit. */
  readonly rateLimiter: RateLimiter | undefined;
  /** Requests answered 429 (bump `.n`). */
  readonly rateLimited: { n: number };
  /** Whether WebSocket upgrades are tunnelled, and how long a silent tunnel lives. */
  readonly websocket: WebSocketOptions;
  /** Conditions on method, headers and query; undefined: host and path only. */
  readonly conditions: RouteConditions | undefined;
  /** How many conditions it has: more specific routes are tried first. */
  readonly specificity: number;
  readonly requestHeaders: CompiledHeaderRules | undefined;
  readonly responseHeaders: CompiledHeaderRules | undefined;
  /** Replaces the matched path prefix upstream; undefined: the path goes as it came. */
  readonly rewritePrefix: string | undefined;
  /** Answers with this redirect instead of forwarding. */
  readonly redirect: Redirect | undefined;
  /** Plain-HTTP requests get a redirect to HTTPS instead; undefined: served. */
  readonly httpsRedirect: HttpsRedirect | undefined;
  /** The Strict-Transport-Security value added to HTTPS answers; undefined: none. */
  readonly hsts: string | undefined;
  /** Send RFC 7239 Forwarded upstream. */
  readonly forwarded: boolean;
}

/** The host and path lookup of one set of routes (every route, or those one listener serves). */
interface RouteIndex {
  readonly exact: ReadonlyMap<string, RouteList>;
  /** By suffix with its leading dot: `.example.com` for `*.example.com`. */
  readonly wildcards: ReadonlyMap<string, RouteList>;
  readonly anyHost: RouteList;
}

function hstsValue(hsts: Hsts | undefined): string | undefined {
  if (hsts === undefined) return undefined;
  return `max-age=${hsts.maxAgeSeconds}${hsts.includeSubDomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`;
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
    /** Every route, when no route is limited to listeners; undefined otherwise. */
    private readonly shared: RouteIndex | undefined,
    /** Per listener name, when some route is limited to listeners. */
    private readonly byListener: ReadonlyMap<string, RouteIndex>,
  ) {}

  /**
   * The route for a request. `host` must already be normalized (normalizeHost) or undefined when
   * the request had none; `url` is the request target as received (`/path?query`); `req` is
   * what routes with conditions read (without it, only routes without conditions match);
   * `listener` the name of the listener it came in on.
   */
  match(host: string | undefined, url: string, req?: RouteRequest, listener: string = DEFAULT_LISTENER): CompiledRoute | undefined {
    const index = this.shared ?? this.byListener.get(listener);
    if (index === undefined) return undefined;
    let candidates = index.anyHost;
    if (host !== undefined) {
      const exact = index.exact.get(host);
      if (exact !== undefined) candidates = exact;
      else if (index.wildcards.size > 0) {
        // Longest wildcard suffix first: try the host's suffixes from its first dot on (one map
        // read per label, however many wildcards there are). `*.a.com` needs a label before `.a.com`.
        for (let dot = host.indexOf('.', 1); dot > 0; dot = host.indexOf('.', dot + 1)) {
          const w = index.wildcards.get(host.slice(dot));
          if (w !== undefined) {
            candidates = w;
            break;
          }
        }
      }
    }
    return candidates.find(url, req);
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
  /** TLS to the backends of pools that say so (tls/upstream-tls.ts), by pool name. */
  upstreamTls?: ReadonlyMap<string, UpstreamTls> | undefined;
  /**
   * Resource hashes of the config (`pools/<name>` → hash, see AppliedConfig): a pool is reused when
   * its hash is the previous table's. Absent: pools are compared by their JSON (slower on large pools).
   */
  resourceHashes?: ReadonlyMap<string, string> | undefined;
  /** The hosts a pool's balancer may pick, with effective weights (health, panic, slow start); default: every active backend at its weight. */
  hosts?: ((pool: string, settings: Config['pools'][string], backends: readonly CompiledBackend[]) => Host<CompiledBackend>[]) | undefined;
}

function compilePool(name: string, pool: Config['pools'][string], deps: CompileDeps): CompiledPool {
  const tls = deps.upstreamTls?.get(name);
  const content = deps.resourceHashes?.get(resourceKey('pools', name)) ?? JSON.stringify(pool);
  // A rotated CA or client certificate changes the pool's TLS, not its resource.
  const source = tls === undefined ? content : `${content}\u0000${tls.identity}`;
  const reused = deps.previous?.pools.get(name);
  if (reused !== undefined && reused.source === source) return reused;
  const clock = deps.clock ?? systemClock;
  const resilience = compilePoolResilience(name, pool, reused?.resilience, deps.metrics.resilience, clock);
  let upstream: UpstreamSettings = tls === undefined ? resilience.upstream : { ...resilience.upstream, tls };
  if (pool.protocol !== undefined && pool.protocol !== 'http1')
    upstream = { ...upstream, protocol: pool.protocol, maxStreamsPerConnection: pool.maxStreamsPerConnection };
  const runtimes = new Map<string, BackendRuntime>();
  for (const b of reused?.backends ?? []) runtimes.set(b.id, b.runtime);
  const backends: CompiledBackend[] = pool.backends.map((b) => ({
    id: b.id,
    address: b.address,
    weight: b.weight,
    state: b.state,
    upstream: b.state === 'active' ? deps.upstreams.acquire(b.address, upstream) : undefined,
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
    latency: deps.metrics.upstreamLatency(name),
    resilience,
    upstream,
    source,
    upstreamKeys: backends.filter((b) => b.upstream !== undefined).map((b) => upstreamKey(b.address, upstream)),
  };
}

/** Sort key: host tier (exact, wildcard by longer suffix, any), then longer prefix, then more conditions, then name. */
function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  return (
    tierOf(a) - tierOf(b) || b.pathPrefix.length - a.pathPrefix.length || b.specificity - a.specificity || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
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
      duration: deps.metrics.requestDuration(name),
      rateLimiter: routeRateLimiter(route, deps.previous?.routes.get(name)?.rateLimiter),
      rateLimited: deps.metrics.resilience.route(name),
      websocket: route.websocket ?? WEBSOCKET_DEFAULTS,
      conditions: compileConditions(route.match),
      specificity: routeSpecificity(route),
      requestHeaders: compileHeaderRules(route.requestHeaders),
      responseHeaders: compileHeaderRules(route.responseHeaders),
      rewritePrefix: route.rewrite?.pathPrefix,
      redirect: route.redirect,
      httpsRedirect: route.httpsRedirect,
      hsts: hstsValue(route.hsts),
      forwarded: route.forwarded === true,
    });
  }

  const all = [...routes.values()];
  // One index for every listener unless a route is limited to some (or an L4 listener, which takes
  // only the routes that name it, is configured): then one per listener.
  const l4Listeners = Object.values(config.listeners ?? {}).some((l) => isL4Protocol(l.protocol));
  if (!l4Listeners && Object.values(config.routes).every((r) => r.listeners === undefined)) {
    return new RoutingTable(input.version, config, pools, routes, buildIndex(all), new Map());
  }
  const byListener = new Map<string, RouteIndex>();
  for (const listener of [DEFAULT_LISTENER, ...Object.keys(config.listeners ?? {})]) {
    // A route that names no listener serves the HTTP ones only: L4 listeners take the routes that name them.
    const l4 = config.listeners?.[listener] !== undefined && isL4Protocol(config.listeners[listener].protocol);
    const serves = all.filter((r) => {
      const limited = config.routes[r.name]?.listeners;
      return limited === undefined ? !l4 : limited.includes(listener);
    });
    byListener.set(listener, buildIndex(serves));
  }
  return new RoutingTable(input.version, config, pools, routes, undefined, byListener);
}

/** Host tiers and prefix order for `all`: see the file comment. */
function buildIndex(all: CompiledRoute[]): RouteIndex {
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

  return { exact, wildcards, anyHost: new RouteList(anyHost, tierOf) };
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
