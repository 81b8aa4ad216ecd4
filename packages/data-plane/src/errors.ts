/**
 * The data plane's error registry: one stable code per failure an operator or a test may need to
 * tell apart. Snapshot codes travel in NACK messages; upstream kinds label metrics and pick the
 * status code the client sees.
 */

export const ERROR_CODES = {
  /** A pushed or cached snapshot is not JSON. */
  SNAPSHOT_JSON: 'DP_ERR_SNAPSHOT_JSON',
  /** A snapshot parsed but failed validateConfig (the same rules the control plane applies). */
  SNAPSHOT_INVALID: 'DP_ERR_SNAPSHOT_INVALID',
  /** A per-resource delta push; this data plane only applies whole snapshots so far. */
  SNAPSHOT_DELTA_UNSUPPORTED: 'DP_ERR_SNAPSHOT_DELTA_UNSUPPORTED',
  /** Validation passed but building the routing table failed (a bug, reported rather than thrown). */
  SNAPSHOT_COMPILE: 'DP_ERR_SNAPSHOT_COMPILE',
  /** The cache file exists but cannot be used; the data plane starts without it. */
  CACHE_CORRUPT: 'DP_ERR_CACHE_CORRUPT',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export class DataPlaneError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DataPlaneError';
  }
}

/**
 * Why a forwarded request failed, as counted in lb_dp_upstream_errors_total{kind}.
 * `connect`: no connection to the backend (refused, unreachable, DNS, connect timeout) → 502.
 * `timeout`: connected, but headers or body did not arrive in time → 504.
 * `reset`: the backend closed the connection mid-exchange → 502.
 * `protocol`: the backend answered with something that is not valid HTTP/1.1 → 502.
 * `other`: anything else → 502.
 */
export const UPSTREAM_ERROR_KINDS = ['connect', 'timeout', 'reset', 'protocol', 'other'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

// Node's socket codes, the built-in client's (upstream/upstream.ts) and undici's.
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'LB_UPSTREAM_CONNECT_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMEOUT_CODES = new Set(['LB_UPSTREAM_HEADERS_TIMEOUT', 'LB_UPSTREAM_BODY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'LB_UPSTREAM_CLOSED', 'LB_UPSTREAM_POOL_CLOSED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export function classifyUpstreamError(err: unknown): UpstreamErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'other';
  if (CONNECT_CODES.has(code)) return 'connect';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (RESET_CODES.has(code)) return 'reset';
  if (code.startsWith('HPE_') || code === 'LB_UPSTREAM_PROTOCOL' || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH')
    return 'protocol';
  return 'other';
}
