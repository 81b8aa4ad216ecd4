/**
 * The one way a config changes: read the current version, apply a mutation, validate the whole
 * result, diff it, and commit it as version N+1 in one compare-and-swap against N.
 *
 * A write costs what it changes, not what the config holds: the mutation works on a copy-on-write
 * draft, validation trusts the resources the mutation left alone (the whole result is still
 * checked for relations between resources), and only changed resources are stringified, hashed,
 * diffed and stored.
 */
import {
  diffConfigs,
  parseResourceKey,
  sectionsOf,
  validateConfig,
  type Config,
  type ConfigChange,
  type ConfigVersionRecord,
  type FieldError,
  type ResourceSections,
} from '@lb/shared';
import { ApiError, StoreUnavailableError } from '../errors.js';
import { type ConfigStore, nextVersion, type StoredConfig } from '../store/config-store.js';
import { changedKeys, encodeConfig } from '../store/encoded-config.js';
import { draftOf } from './config-draft.js';

/** `If-Match` as parsed from the header: the versions the client accepts, or any (`*`). */
export type Precondition = { anyVersion: true } | { versions: number[] };

export interface WriteRequest {
  /** Absent: no precondition, and a write that loses a race is retried on the new version. */
  precondition?: Precondition;
  dryRun: boolean;
  /** The token name the write is made with (recorded as `actor` and `author`). */
  actor: string;
  /** The caller's address. */
  source: string;
  requestId: string;
  message: string;
  /** Set on rollbacks: recorded in the version record. */
  rollbackOf?: number;
  /** ?stage=true: commit to the history without making it current (a rollout takes it to the nodes). */
  stage?: boolean;
  /** Commit a version even when the result equals the current config (a rollout's rollback must move nodes past the staged version). */
  evenIfUnchanged?: boolean;
  /** Ids of private keys sent with this write but not stored because it is a dry run (tls/certificate-rules.ts). */
  pendingKeys?: ReadonlySet<string>;
}

/**
 * Rules a resulting config must pass beyond validateConfig that need more than the document (the
 * key store, the clock, what changed since `current`). Field errors make the write a 400.
 */
export type WriteVerifier = (next: Config, current: Config, request: WriteRequest) => Promise<FieldError[]>;

/**
 * Turns the current config into the next one (an unvalidated document). It may be called more
 * than once (after a lost race) and must not keep state between calls; it throws ApiError for
 * request-level problems (a missing pool to patch, a pool still in use).
 */
export type Mutation = (current: Config) => unknown;

export interface WriteResult {
  /** The new version; for dry runs and no-op writes, the current one. */
  version: number;
  /** False for dry runs and for writes that change nothing (no version is created for those). */
  committed: boolean;
  dryRun: boolean;
  /** Committed staged: in the history, not current. */
  staged?: boolean;
  changes: ConfigChange[];
  /** The whole config as of `version` (or as it would be, for a dry run). */
  config: Config;
}

export interface ConfigWriterOptions {
  /** Attempts before giving up with 409 when writers without If-Match keep racing. */
  maxAttempts?: number;
  /** The largest config (bytes of its JSON) a write may produce; larger gets 413. Default 32 MiB. */
  maxConfigBytes?: number;
  now?: () => Date;
  verify?: WriteVerifier;
}

export const DEFAULT_MAX_CONFIG_BYTES = 32 * 1024 * 1024;

/** Only the resources named by `keys`, in configs with every section of `config`: what diffConfigs needs to see. */
function only(config: Config, keys: ReadonlySet<string>, sectionsOfBoth: Iterable<string>): Config {
  const all = sectionsOf(config);
  const out: ResourceSections = {};
  for (const section of sectionsOfBoth) out[section] = {};
  for (const key of keys) {
    const { section, name } = parseResourceKey(key);
    const resources = all[section];
    if (resources !== undefined && Object.hasOwn(resources, name)) out[section]![name] = resources[name];
  }
  return out as unknown as Config;
}

function satisfies(precondition: Precondition | undefined, version: number): boolean {
  if (!precondition) return true;
  if ('anyVersion' in precondition) return true;
  return precondition.versions.includes(version);
}

function stale(precondition: Precondition, current: number): ApiError {
  const wanted = 'versions' in precondition ? precondition.versions.join(', ') : '*';
  return new ApiError('LB_CP_STALE_VERSION', `If-Match names version ${wanted} but the current version is ${current}; read it again and retry`, undefined, {
    currentVersion: current,
  });
}

export class ConfigWriter {
  private readonly maxAttempts: number;
  readonly maxConfigBytes: number;
  private readonly now: () => Date;
  private readonly verify: WriteVerifier | undefined;

  constructor(
    private readonly store: ConfigStore,
    options: ConfigWriterOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.maxConfigBytes = options.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES;
    this.now = options.now ?? (() => new Date());
    this.verify = options.verify;
  }

  async write(request: WriteRequest, mutate: Mutation): Promise<WriteResult> {
    let attempts = 0;
    let current = await this.store.current();
    for (;;) {
      if (!satisfies(request.precondition, current.version)) throw stale(request.precondition!, current.version);
      const draft = draftOf(current.config);
      const validation = validateConfig(draft.settle(mutate(draft.config)), '', { trusted: current.config });
      if (!validation.ok) throw new ApiError('LB_CP_VALIDATION', 'the resulting config is invalid; nothing was changed', validation.errors);
      const next = validation.value;
      const problems = (await this.verify?.(next, current.config, request)) ?? [];
      if (problems.length > 0) throw new ApiError('LB_CP_VALIDATION', 'the resulting config is invalid; nothing was changed', problems);
      const encoded = encodeConfig(next, current.encoded);
      if (encoded.bytes > this.maxConfigBytes) {
        throw new ApiError(
          'LB_CP_PAYLOAD_TOO_LARGE',
          `the resulting config would be ${encoded.bytes} bytes, over the limit of ${this.maxConfigBytes} (--max-config-bytes); nothing was changed`,
          undefined,
          { bytes: encoded.bytes, limit: this.maxConfigBytes },
        );
      }
      const changed = changedKeys(current.encoded, encoded);
      const sections = new Set([...current.encoded.sections, ...encoded.sections]);
      const changes = diffConfigs(only(current.config, changed, sections), only(next, changed, sections));
      if (request.dryRun) return { version: current.version, committed: false, dryRun: true, changes, config: next };
      // A write that changes nothing creates no version: history stays a list of real changes,
      // and retried or repeated declarative PUTs are idempotent.
      if (changes.length === 0 && request.evenIfUnchanged !== true)
        return { version: current.version, committed: false, dryRun: false, changes, config: current.config };
      const record: ConfigVersionRecord = {
        version: nextVersion(current),
        parent: current.version,
        createdAt: this.now().toISOString(),
        author: request.actor,
        actor: request.actor,
        source: request.source,
        requestId: request.requestId,
        message: request.message,
        ...(request.rollbackOf !== undefined ? { rollbackOf: request.rollbackOf } : {}),
        ...(request.stage === true ? { staged: true } : {}),
        config: next,
      };
      if (await this.commit(record, encoded, current))
        return { version: record.version, committed: true, dryRun: false, ...(record.staged ? { staged: true } : {}), changes, config: next };
      if (++attempts >= this.maxAttempts) break;
      const base = current;
      current = await this.store.current();
      // The pointer did not move: the garbage collector ran meanwhile (store.commit); just go again.
      // (A staged write moves only the pointer's `staged`: the next attempt takes the next number.)
      if (current.version === base.version && current.historyId === base.historyId) continue;
      // Another writer committed between our read and our transaction. With If-Match the client
      // based its change on a version that is now stale; without it, redo the change on top.
      if (request.precondition && 'versions' in request.precondition) throw stale(request.precondition, current.version);
    }
    throw new ApiError('LB_CP_CONFLICT', `the config kept changing under this write (${this.maxAttempts} attempts); retry`);
  }

  private async commit(record: ConfigVersionRecord, encoded: ReturnType<typeof encodeConfig>, base: StoredConfig): Promise<boolean> {
    try {
      return await this.store.commit(record, encoded, base);
    } catch (err) {
      // The transaction may have reached etcd before the deadline passed: say so, never "nothing changed".
      if (err instanceof StoreUnavailableError) {
        throw new StoreUnavailableError(
          `${err.message}; version ${record.version} may or may not have been committed: check GET /v1/versions before retrying`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}
