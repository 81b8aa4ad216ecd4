/**
 * Turns a config push into the whole config it leads to, without touching what runs: a full
 * snapshot is parsed; a delta is applied to a copy of the running config (unchanged resources are
 * the running objects themselves). Either way the whole result is validated — unchanged resources
 * are trusted as already validated, relations between resources are checked across all — before
 * anyone may swap it in. What cannot be applied is refused with a code from errors.ts.
 *
 * The rule for versions going backwards (README, "The CP–DP protocol"): within a history a node
 * never applies a version below the one it runs; a snapshot of another history is applied whatever
 * its number.
 */
import {
  configDigest,
  describeParseError,
  emptyConfig,
  resourceHash,
  resourceKey,
  sectionsOf,
  type Config,
  type ConfigSnapshot,
  type ResourceSections,
  type TlsSecrets,
} from '@lb/shared';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { appliedConfig, type AppliedConfig } from './applied-config.js';
import { checkConfigValue } from './snapshot-validate.js';

export type PushResolution = { ok: true; next: AppliedConfig; unchanged: boolean } | { ok: false; code: ErrorCode; error: string };

export interface ResolveOptions {
  /** Apply a full snapshot even if it is older than what runs in the same history (a cluster primary restoring its workers). */
  replace?: boolean;
}

function refuse(code: ErrorCode, error: string): PushResolution {
  return { ok: false, code, error };
}

function describeRunning(running: AppliedConfig | undefined): string {
  return running === undefined ? 'nothing' : `version ${running.version} of history "${running.historyId}"`;
}

export function resolvePush(running: AppliedConfig | undefined, snapshot: ConfigSnapshot, options: ResolveOptions = {}): PushResolution {
  const { version, historyId } = snapshot;
  if (!Number.isSafeInteger(version) || version < 0) return refuse(ERROR_CODES.SNAPSHOT_INVALID, `version must be an integer in 0..2^53-1, got ${version}`);
  const sameHistory = running !== undefined && historyId !== '' && running.historyId === historyId;
  if (sameHistory && version < running.version && !options.replace) {
    return refuse(ERROR_CODES.SNAPSHOT_STALE, `version ${version} is older than version ${running.version} this node runs in the same history`);
  }
  if (snapshot.configJson !== '') return resolveFull(running, snapshot);
  return resolveDelta(running, snapshot);
}

function resolveFull(running: AppliedConfig | undefined, snapshot: ConfigSnapshot): PushResolution {
  // A control plane that restarted (or a replica we reconnected to) may resend what we run.
  if (running !== undefined && running.version === snapshot.version && running.historyId === snapshot.historyId && snapshot.digest === running.digest) {
    return { ok: true, next: running, unchanged: true };
  }
  let received: unknown;
  try {
    received = JSON.parse(snapshot.configJson);
  } catch (err) {
    return refuse(ERROR_CODES.SNAPSHOT_JSON, `config is not valid JSON: ${describeParseError(err)}`);
  }
  const check = checkConfigValue(received);
  if (!check.ok) return check;
  const next = appliedConfig(snapshot.version, snapshot.historyId, check.config, received as Config);
  const unchanged = running !== undefined && running.version === next.version && running.historyId === next.historyId && running.digest === next.digest;
  return { ok: true, next: unchanged ? running : next, unchanged };
}

function resolveDelta(running: AppliedConfig | undefined, snapshot: ConfigSnapshot): PushResolution {
  if (running === undefined || running.historyId !== snapshot.historyId || running.version !== snapshot.baseVersion) {
    return refuse(
      ERROR_CODES.SNAPSHOT_BASE_MISMATCH,
      `a delta on version ${snapshot.baseVersion} of history "${snapshot.historyId}", but this node runs ${describeRunning(running)}`,
    );
  }
  const sections: ResourceSections = {};
  for (const [section, resources] of Object.entries(sectionsOf(running.config))) sections[section] = { ...resources };
  const hashes = new Map(running.hashes);
  for (const ref of snapshot.removed) {
    delete sections[ref.type]?.[ref.name];
    hashes.delete(resourceKey(ref.type, ref.name));
  }
  for (const resource of snapshot.upserted) {
    let value: unknown;
    try {
      value = JSON.parse(resource.json);
    } catch (err) {
      return refuse(ERROR_CODES.SNAPSHOT_JSON, `${resource.type}.${resource.name} is not valid JSON: ${describeParseError(err)}`);
    }
    const section = sections[resource.type] ?? {};
    sections[resource.type] = section;
    section[resource.name] = value;
    hashes.set(resourceKey(resource.type, resource.name), resourceHash(resource.json));
  }
  const digest = configDigest(hashes);
  if (digest !== snapshot.digest) {
    return refuse(
      ERROR_CODES.SNAPSHOT_BASE_MISMATCH,
      `the delta on version ${snapshot.baseVersion} does not lead to the config the control plane pushed (digest differs)`,
    );
  }
  const check = checkConfigValue(sections as unknown as Config, running.config);
  if (!check.ok) return check;
  // Validation fills defaults in new resources only; the control plane sends them filled, so the hashes hold.
  return { ok: true, next: { version: snapshot.version, historyId: snapshot.historyId, config: check.config, hashes, digest }, unchanged: false };
}

/** The running config as a full snapshot, with the key material it runs with (for a worker that starts, or to restore workers). */
export function fullSnapshotOf(applied: AppliedConfig | undefined, nonce: string, secrets: TlsSecrets | null = null): ConfigSnapshot {
  const config = applied?.config ?? emptyConfig();
  return {
    version: applied?.version ?? 0,
    nonce,
    configJson: JSON.stringify(config),
    baseVersion: 0,
    upserted: [],
    removed: [],
    historyId: applied?.historyId ?? '',
    digest: applied?.digest ?? '',
    secrets,
  };
}
