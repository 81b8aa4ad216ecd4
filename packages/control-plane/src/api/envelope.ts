/**
 * PUT accepts what the matching GET answers: `GET /v1/config` → `{version, config}` can be edited
 * and sent back to `PUT /v1/config` as is, and the same for a pool, a route, a backend and a
 * pool's backend list. The envelope is recognised by its resource member (no resource has a
 * member of that name); its `version` is the version the caller read, so it acts as If-Match.
 */
import type { FieldError } from '@lb/shared';
import { ApiError } from '../errors.js';

export interface Unwrapped {
  /** The resource itself, to validate. */
  body: unknown;
  /** The envelope's `version`, when it had one. */
  version?: number;
}

/**
 * `resource` is the member holding the resource (`config`, `pool`, …); `others` are the members
 * the GET answer has besides it and `version` (e.g. `name`), which must match the path if present.
 */
export function unwrapEnvelope(body: unknown, resource: string, others: Record<string, string> = {}): Unwrapped {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !Object.hasOwn(body, resource)) return { body };
  const envelope = body as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const key of Object.keys(envelope)) {
    if (key === resource || key === 'version') continue;
    if (!(key in others))
      errors.push({ field: key, message: `unknown field (a GET answer holds only version, ${[...Object.keys(others), resource].join(', ')})` });
    else if (envelope[key] !== others[key]) errors.push({ field: key, message: `is "${String(envelope[key])}" but the path names "${others[key]}"` });
  }
  const version = envelope.version;
  if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0)) {
    errors.push({ field: 'version', message: 'must be the config version the body was read at (a whole number)' });
  }
  if (errors.length > 0) throw new ApiError('LB_CP_VALIDATION', 'the body is invalid; nothing was changed', errors);
  return { body: envelope[resource], ...(typeof version === 'number' ? { version } : {}) };
}
