/**
 * The data plane's error registry: every stable code an operator, a client or a test may need to
 * tell apart, in one place and documented in docs/errors.md (a unit test fails when a code is
 * missing there). Three families:
 *
 * - ERROR_CODES: why a snapshot was refused (they travel in NACK messages) or the cache unused;
 * - UPSTREAM_ERRORS: why the built-in upstream client failed a request (beside node's own socket
 *   codes and llhttp's HPE_*), classified into the `kind` label of lb_dp_upstream_errors_total;
 * - LOCAL_REPLIES: the answers the proxy gives itself, told apart from a backend's own by their
 *   `x-lb-error` header (the code) and written to the access log.
 */

export const ERROR_CODES = {
  /** A pushed or cached snapshot is not JSON. */
  SNAPSHOT_JSON: 'DP_ERR_SNAPSHOT_JSON',
  /** A snapshot parsed but failed validateConfig (the same rules the control plane applies). */
  SNAPSHOT_INVALID: 'DP_ERR_SNAPSHOT_INVALID',
  /** A delta whose base is not what this node runs (another version or history, or a different digest as result). */
  SNAPSHOT_BASE_MISMATCH: 'DP_ERR_SNAPSHOT_BASE_MISMATCH',
  /** A version older than the one running in the same history (versions only go up within a history). */
  SNAPSHOT_STALE: 'DP_ERR_SNAPSHOT_STALE',
  /** Validation passed but building the routing table failed (a bug, reported rather than thrown). */
  SNAPSHOT_COMPILE: 'DP_ERR_SNAPSHOT_COMPILE',
  /** The cache file exists but cannot be used; the data plane starts without it. */
  CACHE_CORRUPT: 'DP_ERR_CACHE_CORRUPT',
  /** A listener's TLS cannot be built: a certificate without its private key in the push (the control plane says why), or a key OpenSSL refuses. */
  TLS_UNAVAILABLE: 'DP_ERR_TLS_UNAVAILABLE',
  /** A listener's port cannot be bound (in use, not permitted). */
  LISTENER_BIND: 'DP_ERR_LISTENER_BIND',
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
 * Error codes of the built-in upstream client (upstream/*). Socket errors keep node's own codes
 * (ECONNREFUSED, ECONNRESET, …) and parser errors llhttp's (HPE_*).
 */
export const UPSTREAM_ERRORS = {
  CONNECT_TIMEOUT: 'LB_UPSTREAM_CONNECT_TIMEOUT',
  HEADERS_TIMEOUT: 'LB_UPSTREAM_HEADERS_TIMEOUT',
  BODY_TIMEOUT: 'LB_UPSTREAM_BODY_TIMEOUT',
  /** The backend closed the connection before the response was complete. */
  CLOSED: 'LB_UPSTREAM_CLOSED',
  /** The pool was closed or destroyed (its backend left the config) before the request finished. */
  POOL_CLOSED: 'LB_UPSTREAM_POOL_CLOSED',
  /** An answer nobody asked for: a response with no request, bytes past a response, a protocol switch, framing the proxy will not pass on. */
  PROTOCOL: 'LB_UPSTREAM_PROTOCOL',
  /** The request body ended before its Content-Length, or failed. */
  REQUEST_BODY: 'LB_UPSTREAM_REQUEST_BODY',
  /** The client went away; the attempt was abandoned (never a backend's fault). */
  CLIENT_ABORTED: 'LB_CLIENT_ABORTED',
  /** The TLS handshake with the backend failed: its certificate does not verify (chain, name, dates), or no protocol in common. */
  TLS: 'LB_UPSTREAM_TLS',
  /** An HTTP/2 backend refused the stream unprocessed (REFUSED_STREAM, or past its GOAWAY): the request never reached it. */
  REFUSED_STREAM: 'LB_UPSTREAM_REFUSED_STREAM',
} as const;

export type UpstreamErrorCode = (typeof UPSTREAM_ERRORS)[keyof typeof UPSTREAM_ERRORS];

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** A socket error between the TCP connect and the end of the TLS handshake: the TLS failed (the certificate does not verify, no common protocol), told apart from a refused connection. */
export function tlsHandshakeError(err: Error): UpstreamError {
  const code = (err as { code?: string }).code;
  return new UpstreamError(
    UPSTREAM_ERRORS.TLS,
    `TLS with the backend failed: ${err.message}${code !== undefined && !err.message.includes(code) ? ` (${code})` : ''}`,
  );
}

/**
 * Why a forwarded request failed, as counted in lb_dp_upstream_errors_total{kind}.
 * `connect`: no connection to the backend (refused, unreachable, DNS, connect timeout) → 502.
 * `timeout`: connected, but headers or body did not arrive in time → 504.
 * `reset`: the backend closed the connection mid-exchange → 502.
 * `protocol`: the backend answered with something that is not valid HTTP/1.1, or more than it owed → 502.
 * `tls`: the TLS handshake with the backend failed (its certificate does not verify) → 502.
 * `other`: anything else → 502.
 */
export const UPSTREAM_ERROR_KINDS = ['connect', 'timeout', 'reset', 'protocol', 'tls', 'other'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

// Node's socket codes, the built-in client's and undici's.
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  UPSTREAM_ERRORS.CONNECT_TIMEOUT,
  'UND_ERR_CONNECT_TIMEOUT',
  UPSTREAM_ERRORS.REFUSED_STREAM,
]);
const TIMEOUT_CODES = new Set([UPSTREAM_ERRORS.HEADERS_TIMEOUT, UPSTREAM_ERRORS.BODY_TIMEOUT, 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', UPSTREAM_ERRORS.CLOSED, UPSTREAM_ERRORS.POOL_CLOSED, 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const PROTOCOL_CODES = new Set([UPSTREAM_ERRORS.PROTOCOL, 'UND_ERR_INFO', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH']);
/** OpenSSL's verification results as node reports them (undici passes them on as they are). */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

export function classifyUpstreamError(err: unknown): UpstreamErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'other';
  if (CONNECT_CODES.has(code)) return 'connect';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (RESET_CODES.has(code)) return 'reset';
  if (code.startsWith('HPE_') || PROTOCOL_CODES.has(code)) return 'protocol';
  if (code === UPSTREAM_ERRORS.TLS || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || CERTIFICATE_CODES.has(code)) return 'tls';
  return 'other';
}

/**
 * The answers the proxy gives itself, by the `x-lb-error` code they carry. `close`: the client
 * connection closes after the answer (the request's framing cannot be trusted).
 */
export const LOCAL_REPLY_CODES = {
  no_config: { status: 503, text: 'no configuration applied yet' },
  no_route: { status: 404, text: 'no route matches this request' },
  no_backend: { status: 503, text: 'no backend available' },
  upstream_connect: { status: 502, text: 'upstream connect failed' },
  upstream_error: { status: 502, text: 'upstream error' },
  upstream_timeout: { status: 504, text: 'upstream timed out' },
  upstream_tls: { status: 502, text: 'upstream TLS failed' },
  bad_request: { status: 400, text: 'bad request', close: true },
  too_many_headers: { status: 431, text: 'too many request header fields', close: true },
  transfer_coding_not_implemented: { status: 501, text: 'transfer coding not implemented', close: true },
  overloaded: { status: 503, text: 'overloaded' },
  rate_limited: { status: 429, text: 'rate limit exceeded' },
  /** The route redirects plain HTTP to HTTPS: 308 by default, 301 when the route says so. */
  https_redirect: { status: 308, text: 'moved to https' },
} as const satisfies Record<string, { status: number; text: string; close?: boolean }>;

export type LocalReplyCode = keyof typeof LOCAL_REPLY_CODES;
