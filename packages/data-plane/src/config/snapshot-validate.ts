/**
 * The edge where pushed and cached configs enter the data plane: parse, then the same
 * validateConfig the control plane runs before committing. Whatever fails here is NACKed with a
 * reason an operator can act on, and the running table stays. push-resolver.ts builds the whole
 * config a push leads to and checks it here.
 */
import { validateConfig, type Config } from '@lb/shared';
import { ERROR_CODES, type ErrorCode } from '../errors.js';

export type SnapshotCheck = { ok: true; config: Config } | { ok: false; code: ErrorCode; error: string };

/** NACK reasons travel in a gRPC message and land in GET /v1/nodes: keep them readable. */
const MAX_REASON = 2_000;

function truncate(text: string): string {
  return text.length <= MAX_REASON ? text : `${text.slice(0, MAX_REASON - 1)}…`;
}

/** `trusted`: a config validated before, whose resources `value` shares are not checked again (see ValidationOptions.trusted). */
export function checkConfigValue(value: unknown, trusted?: Config): SnapshotCheck {
  const result = validateConfig(value, '', trusted === undefined ? {} : { trusted });
  if (result.ok) return { ok: true, config: result.value };
  const reasons = result.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return { ok: false, code: ERROR_CODES.SNAPSHOT_INVALID, error: truncate(`invalid config: ${reasons}`) };
}
