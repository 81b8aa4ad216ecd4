/**
 * The one registry of the control plane's error codes. Every problem+json answer carries one of
 * these codes; the codes are stable (operators and scripts match on them), so never rename one.
 * docs/errors.md lists them for operators, and a unit test fails when a code is missing there.
 */
import type { FieldError } from '@lb/shared';

export const ERROR_CODES = {
  LB_CP_VALIDATION: { status: 400, title: 'The request is invalid' },
  LB_CP_BODY_NOT_JSON: { status: 400, title: 'The body is not valid JSON' },
  LB_CP_BAD_REQUEST: { status: 400, title: 'Bad request' },
  LB_CP_BAD_IF_MATCH: { status: 400, title: 'If-Match must be a config version' },
  LB_CP_UNAUTHENTICATED: { status: 401, title: 'A valid API token is required' },
  LB_CP_FORBIDDEN: { status: 403, title: "The token's role does not allow this" },
  LB_CP_NOT_FOUND: { status: 404, title: 'Not found' },
  LB_CP_METHOD_NOT_ALLOWED: { status: 405, title: 'The method is not allowed on this path' },
  LB_CP_POOL_IN_USE: { status: 409, title: 'The pool is used by routes' },
  LB_CP_CERTIFICATE_IN_USE: { status: 409, title: 'The certificate is used by listeners or pools' },
  LB_CP_LISTENER_IN_USE: { status: 409, title: 'Routes are limited to the listener' },
  LB_CP_SECRETS_KEY_MISSING: { status: 409, title: 'This control plane cannot store private keys (no --secrets-key-file)' },
  LB_CP_TOKEN_EXISTS: { status: 409, title: 'A token with this name exists' },
  LB_CP_NODE_CONNECTED: { status: 409, title: 'The node is connected' },
  LB_CP_CONFLICT: { status: 409, title: 'Too many concurrent writes' },
  LB_CP_NOT_STAGED: { status: 409, title: 'The version is not a staged version above the current one' },
  LB_CP_ROLLOUT_ACTIVE: { status: 409, title: 'Another rollout is under way' },
  LB_CP_ROLLOUT_STATE: { status: 409, title: 'The rollout is not in a state that allows this' },
  LB_CP_STALE_VERSION: { status: 412, title: 'The config changed since the version in If-Match' },
  LB_CP_VERSION_PRUNED: { status: 410, title: 'The version was pruned from the history' },
  LB_CP_PAYLOAD_TOO_LARGE: { status: 413, title: 'The body or the resulting config is too large' },
  LB_CP_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The body must be JSON' },
  LB_CP_INTERNAL: { status: 500, title: 'Internal error' },
  LB_CP_STORE_UNAVAILABLE: { status: 503, title: 'The config store (etcd) is unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that the REST edge turns into an application/problem+json answer. */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly errors?: FieldError[],
    /** Extension members added to the problem document (e.g. `currentVersion`). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail);
    this.name = 'ApiError';
    this.status = ERROR_CODES[code].status;
  }
}

/**
 * The store could not answer (etcd down, deadline passed). Thrown by ConfigStore/NodeStore
 * implementations; the REST edge answers 503. After a commit that failed this way the outcome is
 * unknown: the transaction may still have been applied.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** etcd refused the write because it exceeds its request size limit (--max-request-bytes). */
export class StoreTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreTooLargeError';
  }
}
