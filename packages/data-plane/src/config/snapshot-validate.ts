/**
 * The edge where pushed and cached snapshots enter the data plane: parse, then the same
 * validateConfig the control plane runs before committing. Whatever fails here is NACKed with a
 * reason an operator can act on, and the running table stays.
 */
import { describeParseError, validateConfig, type Config, type ConfigSnapshot } from '@lb/shared';
import { ERROR_CODES, type ErrorCode } from '../errors.js';

export type SnapshotCheck = { ok: true; config: Config } | { ok: false; code: ErrorCode; error: string };

/** NACK reasons travel in a gRPC message and land in GET /v1/nodes: keep them readable. */
const MAX_REASON = 2_000;

function truncate(text: string): string {
  return text.length <= MAX_REASON ? text : `${text.slice(0, MAX_REASON - 1)}…`;
}

/** Parses and validates a config document (the `config_json` of a push or the cache file's `config`). */
export function checkConfigJson(json: string): SnapshotCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    return { ok: false, code: ERROR_CODES.SNAPSHOT_JSON, error: `config is not valid JSON: ${describeParseError(err)}` };
  }
  return checkConfigValue(parsed);
}

export function checkConfigValue(value: unknown): SnapshotCheck {
  const result = validateConfig(value);
  if (result.ok) return { ok: true, config: result.value };
  const reasons = result.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return { ok: false, code: ERROR_CODES.SNAPSHOT_INVALID, error: truncate(`invalid config: ${reasons}`) };
}

/** A whole pushed snapshot; per-resource deltas are refused until this data plane can apply them. */
export function checkSnapshot(snapshot: ConfigSnapshot): SnapshotCheck {
  if (snapshot.baseVersion > 0 || snapshot.upserted.length > 0 || snapshot.removed.length > 0) {
    return { ok: false, code: ERROR_CODES.SNAPSHOT_DELTA_UNSUPPORTED, error: 'delta snapshots are not supported by this data plane; send config_json' };
  }
  if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 0) {
    return { ok: false, code: ERROR_CODES.SNAPSHOT_INVALID, error: `version must be an integer in 0..2^53-1, got ${snapshot.version}` };
  }
  return checkConfigJson(snapshot.configJson);
}
