/**
 * When a failed attempt may be tried again, and after how long. A policy is compiled once per
 * route × pool into plain flags and numbers; the request path reads it only after an attempt has
 * failed, so a request that succeeds the first time never looks at it.
 *
 * A request is retryable when its method is idempotent (RFC 9110 §9.2.2) or it carries the
 * policy's idempotency header, and its body has not started streaming to a backend (see the
 * forwarder). The budget (retry-budget.ts) has the last word.
 */
import type { RetryPolicy } from '@lb/shared';
import type { Random } from '../runtime/clock.js';

/** Why an attempt failed, as retry `on` conditions see it. */
export const FailureKind = {
  ConnectFailure: 1,
  Reset: 2,
  Status503: 4,
  /** 502 or 504. */
  GatewayStatus: 8,
  /** Any other 5xx. */
  OtherStatus5xx: 16,
} as const;
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];

export interface CompiledRetry {
  /** Tries in all, the first included; 1 = never retry. */
  readonly attempts: number;
  /** FailureKind bits this policy retries on. */
  readonly on: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Lower case; undefined: only idempotent methods. */
  readonly idempotencyHeader: string | undefined;
}

export function compileRetry(policy: RetryPolicy): CompiledRetry {
  let on = 0;
  for (const c of policy.on) {
    if (c === 'connect-failure') on |= FailureKind.ConnectFailure;
    else if (c === 'reset') on |= FailureKind.Reset;
    else if (c === '503') on |= FailureKind.Status503;
    else if (c === 'gateway-error') on |= FailureKind.Status503 | FailureKind.GatewayStatus;
    else if (c === '5xx') on |= FailureKind.Status503 | FailureKind.GatewayStatus | FailureKind.OtherStatus5xx;
  }
  return {
    attempts: policy.attempts,
    on,
    backoffMs: policy.backoffMs,
    maxBackoffMs: policy.maxBackoffMs,
    idempotencyHeader: policy.idempotencyHeader?.toLowerCase(),
  };
}

/** The FailureKind of a response status; 0 when the status is not a failure (< 500). */
export function statusFailure(status: number): number {
  if (status < 500) return 0;
  if (status === 503) return FailureKind.Status503;
  if (status === 502 || status === 504) return FailureKind.GatewayStatus;
  return FailureKind.OtherStatus5xx;
}

/** RFC 9110 §9.2.2: methods whose intended effect is the same however often they are sent. */
export function isIdempotentMethod(method: string | undefined): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}

/** Whether `rawHeaders` (node's name/value list) has a header named `lowerName` with a non-empty value. */
export function hasHeader(rawHeaders: readonly string[], lowerName: string): boolean {
  const len = lowerName.length;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === len && name.toLowerCase() === lowerName && rawHeaders[i + 1] !== '') return true;
  }
  return false;
}

/** Whether the request as such may be sent twice (method or idempotency key), body aside. */
export function requestRetryable(policy: CompiledRetry, method: string | undefined, rawHeaders: readonly string[]): boolean {
  if (isIdempotentMethod(method)) return true;
  return policy.idempotencyHeader !== undefined && hasHeader(rawHeaders, policy.idempotencyHeader);
}

/**
 * Full-jitter exponential backoff before retry number `retry` (1 for the first retry):
 * random(0, min(maxBackoffMs, backoffMs × 2^(retry-1))). Jitter keeps the retries of many clients
 * that failed together from arriving together.
 */
export function backoffDelay(policy: CompiledRetry, retry: number, random: Random): number {
  const cap = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.min(30, retry - 1));
  return Math.floor(random() * cap);
}
