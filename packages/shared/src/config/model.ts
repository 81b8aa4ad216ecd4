/**
 * The config model: what operators write through the REST API, what etcd stores per version and
 * what every data plane compiles into its routing table. Validated values have every default
 * filled in, so code past validation never guesses.
 */

export const ALGORITHMS = [
  'round_robin',
  'weighted_round_robin',
  'random',
  'weighted_random',
  'least_connections',
  'weighted_least_connections',
  'p2c',
  'least_response_time',
  'ip_hash',
  'consistent_hash',
  'maglev',
  'resource_based',
] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** Algorithms that read `hashOn` (ip_hash always hashes the client address). */
export const HASH_ON_ALGORITHMS: readonly Algorithm[] = ['consistent_hash', 'maglev'];

export const HASH_SOURCES = ['ip', 'header', 'cookie', 'path', 'query'] as const;
export type HashSource = (typeof HASH_SOURCES)[number];

/** What a hash-based pool hashes. `name` is required for header, cookie and query, and unused otherwise. */
export interface HashOn {
  source: HashSource;
  name?: string;
}

/** consistent_hash and maglev hash the client address when `hashOn` is absent. */
export const DEFAULT_HASH_ON: Readonly<HashOn> = Object.freeze({ source: 'ip' });

export interface ConsistentHashOptions {
  /** Ring points of a backend of average weight (others in proportion to their weight), 1..1000, default 100. */
  virtualNodes: number;
  /** Bounded load (Envoy's hash_balance_factor), percent ≥ 100: no backend takes more than this share of the average in-flight load. Absent: unbounded. */
  hashBalanceFactor?: number;
}

export interface P2cOptions {
  /** Exponent of Envoy's `weight / (active + 1)^bias`, 0..10, default 1. */
  bias: number;
}

export interface LeastResponseTimeOptions {
  /** Decay window of the peak-EWMA latency (ms), default 10000. */
  decayMs: number;
}

export interface ResourceBasedOptions {
  /** Response header carrying the backend's load, 0.0 (idle) .. 1.0 (full). Default `x-backend-load`. */
  header: string;
  /** Smoothing window of the reported load (ms), default 5000. */
  decayMs: number;
  /** A fully loaded backend keeps this share of its weight, 1..100, default 10. */
  minWeightPercent: number;
}

export const SAME_SITE_VALUES = ['Lax', 'Strict', 'None'] as const;

export interface StickyOptions {
  /** Cookie name, default `lb_affinity`. */
  cookie: string;
  /** Cookie Max-Age in seconds; 0 (default) makes a session cookie. */
  ttlSeconds: number;
  /** Default false. */
  secure: boolean;
  /** Default true. */
  httpOnly: boolean;
  /** Default `Lax`; `None` needs `secure`. */
  sameSite: (typeof SAME_SITE_VALUES)[number];
}

export const BACKEND_STATES = ['active', 'draining', 'disabled'] as const;
/** `active` takes traffic; `draining` finishes in-flight work but gets nothing new; `disabled` gets nothing. */
export type BackendState = (typeof BACKEND_STATES)[number];

export interface Backend {
  /** Unique within its pool; a name (see NAME_PATTERN). */
  id: string;
  /** `host:port`; IPv6 literals in brackets: `[::1]:8080`. */
  address: string;
  /** 1..1000, default 1. */
  weight: number;
  /** Default `active`. */
  state: BackendState;
}

/**
 * TLS from the data plane to a pool's backends (and for the control plane's health probes of them).
 * Absent: plain HTTP.
 */
export interface PoolTls {
  /** SNI and the name the backend's certificate must hold. Default: the backend's host when it is a name (an IP address sends no SNI and is checked against the certificate's IP SANs). */
  serverName?: string;
  /** Verify the backend's certificate chain and name. Default true. */
  verify: boolean;
  /** A certificate resource (no key needed) that backends' certificates must chain to. Default: the system's CA store. */
  caCertificate?: string;
  /** A certificate resource with a private key, presented to backends that ask for one (mTLS). */
  clientCertificate?: string;
}

export interface Pool {
  /** Default `round_robin`. */
  algorithm: Algorithm;
  /** Default `[]`. */
  backends: Backend[];
  /** consistent_hash and maglev only; default DEFAULT_HASH_ON. */
  hashOn?: HashOn;
  /** consistent_hash only. */
  consistentHash?: ConsistentHashOptions;
  /** p2c only. */
  p2c?: P2cOptions;
  /** least_response_time only. */
  leastResponseTime?: LeastResponseTimeOptions;
  /** resource_based only. */
  resourceBased?: ResourceBasedOptions;
  /** Cookie-based session affinity on top of any algorithm; absent: off. */
  sticky?: StickyOptions;
  /** Active health checks run by the control-plane leader; absent: none (every backend stays `unknown`, routable). */
  healthCheck?: HealthCheck;
  /** Passive checks each data plane runs on its own traffic; absent: off. */
  outlierDetection?: OutlierDetection;
  /** 0..100, default 50 (POOL_DEFAULTS): below this healthy share, route across every active backend (panic). 0 turns panic off. */
  panicThresholdPercent?: number;
  /** 0..3600000, default 0 (off): a backend that is added or turns healthy ramps its weight from 10% to 100% over this window. */
  slowStartMs?: number;
  /** 0..3600000, default 30000: how long requests in flight to a draining or removed backend may take before they are cut. */
  drainTimeoutMs?: number;
  /** Upstream timeouts; absent: RESILIENCE_DEFAULTS.timeouts. Routes may override. */
  timeouts?: Timeouts;
  /** Retries of failed requests; absent: RESILIENCE_DEFAULTS.retry. Routes may override. */
  retry?: RetryPolicy;
  /** Limits on what the pool and each backend take at once, and the error-rate breaker; absent: RESILIENCE_DEFAULTS.circuitBreaker. */
  circuitBreaker?: CircuitBreaker;
  /** TLS to the backends; absent: plain HTTP. */
  tls?: PoolTls;
  /** L4 pools only: a PROXY protocol header (v1 text, v2 binary) with the client's address starts every connection to a backend. Absent: none. */
  proxyProtocol?: ProxyProtocolVersion;
  /** How requests reach the backends (POOL_PROTOCOLS); absent: `http1`. */
  protocol?: PoolProtocol;
  /** `http2` and `h2c` only: streams one connection carries at once (lower if the backend's SETTINGS say so), 1..1000. Default 100. */
  maxStreamsPerConnection?: number;
}

/**
 * `http1`: HTTP/1.1, one request per connection at a time. `http2`: HTTP/2 over TLS (needs `tls`;
 * ALPN `h2`). `h2c`: HTTP/2 over plain TCP with prior knowledge (gRPC backends without TLS).
 */
export const POOL_PROTOCOLS = ['http1', 'http2', 'h2c'] as const;
export type PoolProtocol = (typeof POOL_PROTOCOLS)[number];
/** Streams per HTTP/2 backend connection when the pool does not say. */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100;

export interface Timeouts {
  /** Time to open a connection to a backend (ms); a miss is a connect failure (502, retryable). Default 1000. */
  connectMs: number;
  /** Time for the backend to answer with a status and headers, and the longest silence mid-body (ms); 504. 0: none. Default 15000. */
  requestMs: number;
  /** How long an idle upstream keep-alive connection is kept (ms). Default 60000. */
  idleMs: number;
}

export const RETRY_ON = ['connect-failure', 'reset', '503', 'gateway-error', '5xx'] as const;
/**
 * `connect-failure`: no connection (refused, connect timeout). `reset`: the connection broke before
 * a response. `503`: a 503 answer. `gateway-error`: 502, 503 or 504 answers. `5xx`: any 5xx answer.
 */
export type RetryOn = (typeof RETRY_ON)[number];

export interface RetryPolicy {
  /** Tries in all, the first included; 1 turns retries off. Default 2. */
  attempts: number;
  /** Default ["connect-failure", "reset", "503", "gateway-error"]. */
  on: RetryOn[];
  /** Base of the jittered exponential backoff (ms): a retry n waits random(0, min(maxBackoffMs, backoffMs × 2^(n-1))). Default 25. */
  backoffMs: number;
  /** Default 250. */
  maxBackoffMs: number;
  /** Retries allowed on top of the pool's requests over the last 10 s, in percent (Envoy/Finagle retry budget). Default 20. */
  budgetPercent: number;
  /** Retries always allowed per second, whatever the traffic. Default 3. */
  minRetriesPerSecond: number;
  /** A request carrying this header may be retried whatever its method; absent: only idempotent methods. */
  idempotencyHeader?: string;
}

export interface BreakerLimits {
  /** Connections to a backend (or the pool's backends together). Default 1024. */
  maxConnections: number;
  /** Requests waiting for a connection. Default 1024. */
  maxPendingRequests: number;
  /** Requests in flight. Default 1024. */
  maxRequests: number;
}

export interface ErrorRateBreaker {
  /** Share of failed requests (5xx, connect errors, resets, timeouts) in the window that opens the breaker, 1..100. Default 50. */
  thresholdPercent: number;
  /** The window must hold at least this many requests before the rate counts. Default 20. */
  minRequests: number;
  /** Default 10000. */
  windowMs: number;
  /** Cool-down before trial requests are let through (ms). Default 5000. */
  openMs: number;
  /** Trial requests of a half-open breaker; this many successes in a row close it, one failure opens it again. Default 3. */
  trialRequests: number;
}

export interface CircuitBreaker extends BreakerLimits {
  /** The same limits per backend. Default 1024 each. */
  perBackend: BreakerLimits;
  /** Per-backend breaker that opens on error rate; absent: off. */
  errorRate?: ErrorRateBreaker;
}

export const RATE_LIMIT_KEYS = ['ip', 'header'] as const;

export interface RateLimit {
  /** Tokens added per second to each key's bucket. */
  requestsPerSecond: number;
  /** Bucket size: the most requests a key may send at once. Default: requestsPerSecond (at least 1). */
  burst: number;
  /** `ip`: the client's address as the socket sees it; `header`: the value of `header` (requests without it fall back to the address). Default `ip`. */
  key: (typeof RATE_LIMIT_KEYS)[number];
  /** The header `key: "header"` reads. */
  header?: string;
}

/** The policies a pool gets when it does not set them (the defaults, Envoy's for circuit breakers). */
export const RESILIENCE_DEFAULTS = Object.freeze({
  timeouts: Object.freeze<Timeouts>({ connectMs: 1000, requestMs: 15_000, idleMs: 60_000 }),
  retry: Object.freeze<RetryPolicy>({
    attempts: 2,
    on: ['connect-failure', 'reset', '503', 'gateway-error'],
    backoffMs: 25,
    maxBackoffMs: 250,
    budgetPercent: 20,
    minRetriesPerSecond: 3,
  }),
  circuitBreaker: Object.freeze<CircuitBreaker>({
    maxConnections: 1024,
    maxPendingRequests: 1024,
    maxRequests: 1024,
    perBackend: Object.freeze({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 }),
  }),
});

export const HEALTH_CHECK_TYPES = ['http', 'tcp', 'grpc'] as const;
export type HealthCheckType = (typeof HEALTH_CHECK_TYPES)[number];

export interface HealthCheck {
  /** Default `http`. `grpc` calls grpc.health.v1.Health/Check (service ""); `tcp` only connects. */
  type: HealthCheckType;
  /** http only; default `/health`. */
  path: string;
  /** Default 5000; each backend's schedule is jittered by up to 10% of it. */
  intervalMs: number;
  /** Default 2000, or intervalMs when that is shorter; at most intervalMs (validation refuses more). */
  timeoutMs: number;
  /** Consecutive successes that make an unhealthy or unknown backend healthy; default 2. */
  healthyThreshold: number;
  /** Consecutive failures that make a backend unhealthy; default 3. */
  unhealthyThreshold: number;
  /** http only; statuses counted as success: numbers or "200-399" ranges. Default [200]. */
  expectedStatuses: Array<number | string>;
  /** http: Host header; grpc: authority. Default: the backend's address. */
  host?: string;
  /** Probe this port instead of the backend's own. */
  port?: number;
}

export interface OutlierDetection {
  /** Consecutive 5xx answers that eject a backend; default 5; 0 disables. */
  consecutive5xx: number;
  /** Consecutive gateway errors (502/503/504, connect errors, resets, timeouts) that eject; default 5; 0 disables. */
  consecutiveGatewayErrors: number;
  /** First ejection lasts this long; the n-th lasts n times as long, capped at max(baseEjectionMs, 300000). Default 30000. */
  baseEjectionMs: number;
  /** At most this share of the pool is ejected at once (but always at least one backend); default 10. */
  maxEjectionPercent: number;
  /** How often ejections are reviewed; a backend that stays clean for an interval earns back one step of its ejection multiplier. Default 10000. */
  intervalMs: number;
}

/** Defaults of the pool-level scalars that are optional in stored configs (absent means the default). */
export const POOL_DEFAULTS = Object.freeze({ panicThresholdPercent: 50, slowStartMs: 0, drainTimeoutMs: 30_000 });

/** The ejection time cap: Envoy's max_ejection_time default. */
export const MAX_EJECTION_MS = 300_000;

export interface RouteMatch {
  /** Exact host (case-insensitive, port ignored) or a `*.example.com` wildcard. Absent: any host. */
  host?: string;
  /** Path prefix starting with `/`. Absent: `/`. The longest matching prefix wins. */
  pathPrefix?: string;
  /** Request methods (upper case) the route takes; absent: any. */
  methods?: string[];
  /** Every one must hold. Names are case-insensitive; several fields of a name are one list (`, `-joined). */
  headers?: HeaderMatch[];
  /** Every one must hold, on the decoded value of the query parameter (its first occurrence). */
  query?: QueryMatch[];
}

/**
 * One condition on a value: exactly one of `exact`, `prefix`, `regex` (a whole-value match,
 * JavaScript syntax) or `present` (true: there is a value; false: there is none).
 */
export interface ValueMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
  present?: boolean;
  /** Compare ASCII letters case-insensitively (exact and prefix). Default false: field values are case-sensitive (RFC 9110 §5.5). */
  ignoreCase?: boolean;
}

export interface HeaderMatch extends ValueMatch {
  name: string;
}

export interface QueryMatch extends ValueMatch {
  name: string;
}

/** Header edits, applied in the order remove, set, add. */
export interface HeaderRules {
  /** Names whose fields are removed. */
  remove?: string[];
  /** Names whose fields are replaced by this one value (added when absent). */
  set?: Record<string, string>;
  /** Fields added beside any the message has. */
  add?: Record<string, string>;
}

export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;

/** A route that answers with a redirect instead of forwarding; the Location is the request's URL with these parts replaced. */
export interface Redirect {
  /** Default 302. */
  status: (typeof REDIRECT_STATUSES)[number];
  scheme?: 'http' | 'https';
  /** Replaces the host (and the port the request named). */
  host?: string;
  port?: number;
  /** Replaces the whole path. */
  path?: string;
  /** Replaces the part of the path the route's pathPrefix matched. */
  pathPrefix?: string;
  /** Drop the query. Default false. */
  stripQuery: boolean;
}

export interface RoutePool {
  pool: string;
  /** 0..1000, default 1; a route's weights must not all be 0. */
  weight: number;
}

/** Plain-HTTP requests to a route with this get a redirect to the same URL over HTTPS instead. */
export interface HttpsRedirect {
  /** 301 or 308 (which keeps the method and body). Default 308. */
  status: 301 | 308;
  /** The HTTPS port in the Location; 443 is left out of it. Default 443. */
  port: number;
}

/** RFC 6797 Strict-Transport-Security, added to answers given over HTTPS (never over plain HTTP). */
export interface Hsts {
  /** Default 31536000 (a year). */
  maxAgeSeconds: number;
  /** Default false. */
  includeSubDomains: boolean;
  /** Default false. */
  preload: boolean;
}

export interface Route {
  match: RouteMatch;
  /** At least one, unless the route redirects. */
  pools: RoutePool[];
  /** Only requests that came in on these listeners match (DEFAULT_LISTENER names `--listen`). Absent: every listener. */
  listeners?: string[];
  /** Redirect requests that came over plain HTTP to HTTPS; absent: serve them. */
  httpsRedirect?: HttpsRedirect;
  /** Strict-Transport-Security on this route's HTTPS answers; absent: none. */
  hsts?: Hsts;
  /** Also send RFC 7239 `Forwarded: for=…;proto=…;host=…` upstream (X-Forwarded-* always go). Default false. */
  forwarded?: boolean;
  /** Per-client token bucket on this route; absent: no limit. */
  rateLimit?: RateLimit;
  /** Replaces requestMs of every pool this route sends to, for this route's requests (connectMs and idleMs belong to the pool's connections). */
  timeouts?: Pick<Timeouts, 'requestMs'>;
  /** Replaces the retry policy of every pool this route sends to, for this route's requests (the budget stays the pool's). */
  retry?: RetryPolicy;
  /** WebSocket upgrades on this route; absent: WEBSOCKET_DEFAULTS. */
  websocket?: WebSocketOptions;
  /** Edits of the request headers sent upstream (after the proxy's own X-Forwarded-*). */
  requestHeaders?: HeaderRules;
  /** Edits of the response headers sent to the client. */
  responseHeaders?: HeaderRules;
  /** Replaces the matched path prefix in the path sent upstream. */
  rewrite?: { pathPrefix: string };
  /** Answer every request with this redirect; such a route has no pools. */
  redirect?: Redirect;
}

export interface WebSocketOptions {
  /** Whether `Upgrade: websocket` requests are tunnelled to the route's backends. Default true. */
  enabled: boolean;
  /** A tunnel that carries no byte either way for this long is closed (ms). Default 300000. */
  idleTimeoutMs: number;
}

export const WEBSOCKET_DEFAULTS: Readonly<WebSocketOptions> = Object.freeze({ enabled: true, idleTimeoutMs: 300_000 });
/** The name routes use for the data plane's `--listen` listener; no configured listener may take it. */
export const DEFAULT_LISTENER = 'default';

export const LISTENER_PROTOCOLS = ['http', 'https', 'tcp', 'tls-passthrough'] as const;
export type ListenerProtocol = (typeof LISTENER_PROTOCOLS)[number];

/** Layer 4 listeners: connections are piped to a backend, bytes untouched (TLS passthrough reads the ClientHello's SNI first). */
export const L4_LISTENER_PROTOCOLS: readonly ListenerProtocol[] = ['tcp', 'tls-passthrough'];

export function isL4Protocol(protocol: ListenerProtocol): boolean {
  return protocol === 'tcp' || protocol === 'tls-passthrough';
}

export const PROXY_PROTOCOL_VERSIONS = ['v1', 'v2'] as const;
export type ProxyProtocolVersion = (typeof PROXY_PROTOCOL_VERSIONS)[number];

/** An L4 listener that takes a PROXY protocol header (v1 or v2) from an outer balancer. */
export interface AcceptProxyProtocol {
  /** CIDRs (`10.0.0.0/8`, `::1/128`) of the balancers allowed to send one; connections from anywhere else are closed unread. At least one. */
  trustedSources: string[];
}

/** Defaults of the L4 listener fields (no schema defaults: HTTP listeners must not get them). */
export const L4_LISTENER_DEFAULTS = Object.freeze({ idleTimeoutMs: 600_000, maxConnections: 10_000, helloTimeoutMs: 5_000 });

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** ALPN protocols a listener may offer: `h2` is HTTP/2 over TLS. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'] as const;

/** The TLS policy of an HTTPS listener. */
export interface ListenerTls {
  /** Certificate resources (each with a private key) served by SNI: an exact name beats a wildcard. At least one. */
  certificates: string[];
  /** For clients without SNI or asking for a name no certificate holds. Default: the first of `certificates`. */
  defaultCertificate?: string;
  /** Oldest protocol version accepted. Default TLSv1.2. */
  minVersion: TlsVersion;
  /** OpenSSL cipher list (TLS 1.2 ciphers and TLS 1.3 suites, `:`-separated). Absent: Node's default list. */
  ciphers?: string;
  /** ALPN protocols offered, in order of preference. Default ["http/1.1"]. */
  alpn: Array<(typeof ALPN_PROTOCOLS)[number]>;
  /** Session resumption with tickets whose keys the control plane shares with every node. Default true. */
  sessionResumption: boolean;
  /** Lifetime of a session ticket (s), 1..86400. Default 300. */
  sessionTimeoutSeconds: number;
}

/** A client listener every data plane binds (on its `--bind-address`). */
export interface Listener {
  port: number;
  protocol: ListenerProtocol;
  /** Required for `https`, refused for the others. */
  tls?: ListenerTls;
  // The fields below are for L4 listeners (`tcp`, `tls-passthrough`) only; refused on the others.
  /** A connection that carries no byte either way for this long is closed (ms), 1000..86400000. Default 600000. */
  idleTimeoutMs?: number;
  /** Connections open at once on this listener (per data plane process); more are closed at once. Default 10000. */
  maxConnections?: number;
  /** Time allowed for the PROXY header and (tls-passthrough) the ClientHello (ms), 100..60000. Default 5000. */
  helloTimeoutMs?: number;
  /** Take the client's address from a PROXY protocol header sent by a trusted outer balancer; absent: no header expected. */
  acceptProxyProtocol?: AcceptProxyProtocol;
  /** `http` only: also serve HTTP/2 with prior knowledge (h2c) on this port. Default false. */
  h2c?: boolean;
}

/**
 * A certificate resource. Its private key is never part of the config: the control plane keeps it
 * encrypted beside the versions, keyed by the certificate's public key, and pushes it only over
 * mutual TLS. A certificate without a key can still be a pool's `caCertificate`.
 */
export interface CertificateResource {
  /** PEM: the certificate, then each certificate that issued the one before it. */
  certificate: string;
  /** Accepted although expired or not valid yet (checked when the certificate is written). Default false. */
  allowExpired?: boolean;
}

export interface Config {
  pools: Record<string, Pool>;
  routes: Record<string, Route>;
  /** Client listeners besides `--listen`; absent: none. */
  listeners?: Record<string, Listener>;
  /** Certificates that listeners serve and pools present or trust; absent: none. */
  certificates?: Record<string, CertificateResource>;
}

/** Config plus the version it was committed as; what the DP applies and what GET /v1/config returns. */
export interface VersionedConfig {
  version: number;
  config: Config;
}

/** One immutable entry of the version history, as stored in etcd. */
export interface ConfigVersionRecord {
  version: number;
  /** The version this one was derived from; 0 for the first. */
  parent: number;
  /** ISO 8601. */
  createdAt: string;
  /** Who made the version: the API token's name (the same as `actor` on versions that record one). */
  author: string;
  /** The name of the API token the write was made with; absent on versions written before tokens existed. */
  actor?: string;
  /** The address the write came from, as the control plane's socket saw it. */
  source?: string;
  /** The request id of the write (the X-Request-Id it was sent with, or one the control plane made). */
  requestId?: string;
  message: string;
  /** Set on versions made by POST /v1/versions/{n}/rollback: the version whose content was restored. */
  rollbackOf?: number;
  /**
   * Set on versions written with ?stage=true: in the history, not made current; a rollout
   * (POST /v1/versions/{n}/rollout) takes it to the nodes.
   */
  staged?: boolean;
  config: Config;
}

export function emptyConfig(): Config {
  return { pools: {}, routes: {} };
}
