/**
 * The config model: what operators write through the REST API, what etcd stores per version and
 * what every data plane compiles into its routing table. Validated values have every default
 * filled in, so code past validation never guesses.
 */

export const ALGORITHMS = ['round_robin', 'weighted_round_robin'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

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

export interface Pool {
  /** Default `round_robin`. */
  algorithm: Algorithm;
  /** Default `[]`. */
  backends: Backend[];
}

export interface RouteMatch {
  /** Exact host (case-insensitive, port ignored) or a `*.example.com` wildcard. Absent: any host. */
  host?: string;
  /** Path prefix starting with `/`. Absent: `/`. The longest matching prefix wins. */
  pathPrefix?: string;
}

export interface RoutePool {
  pool: string;
  /** 0..1000, default 1; a route's weights must not all be 0. */
  weight: number;
}

export interface Route {
  match: RouteMatch;
  pools: RoutePool[];
}

export interface Config {
  pools: Record<string, Pool>;
  routes: Record<string, Route>;
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
  author: string;
  message: string;
  /** Set on versions made by POST /v1/versions/{n}/rollback: the version whose content was restored. */
  rollbackOf?: number;
  config: Config;
}

export function emptyConfig(): Config {
  return { pools: {}, routes: {} };
}
