/**
 * The last applied snapshot on disk, so a data plane restarted while no control plane answers
 * still serves. Writes happen after applying and never on the request path: save() returns at
 * once, writes go one at a time, and a burst of versions collapses into a write of the newest.
 * Each write is a temp file, fsync, then rename over the old file, so a crash leaves either the
 * old snapshot or the new one, never half of one.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeParseError, type Config, type Logger, type TlsSecrets } from '@lb/shared';
import { secretsFromJson, secretsToJson } from '../tls/key-material.js';
import { checkConfigValue } from '../config/snapshot-validate.js';
import { ERROR_CODES } from '../errors.js';

export interface CachedSnapshot {
  version: number;
  /** The config history the version belongs to; '' in files written before histories existed. */
  historyId: string;
  config: Config;
  /** The snapshot's private keys and ticket key: the file is written 0600 for them. */
  secrets?: TlsSecrets | undefined;
}

export interface CacheEvents {
  onWrite?(ok: boolean): void;
}

export class SnapshotCache {
  private pending: CachedSnapshot | undefined;
  private writing: Promise<void> | undefined;
  private readonly tmpPath: string;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly events: CacheEvents = {},
  ) {
    this.tmpPath = `${path}.${process.pid}.tmp`;
  }

  /**
   * Reads the cache file once at start. Missing → undefined; unreadable, not JSON or invalid →
   * logged and undefined (the data plane starts empty rather than from a snapshot it cannot trust).
   */
  load(): CachedSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.warn({ err, path: this.path, code: ERROR_CODES.CACHE_CORRUPT }, 'cannot read snapshot cache; ignoring it');
      return undefined;
    }
    const problem = (reason: string) => {
      this.logger.warn({ path: this.path, code: ERROR_CODES.CACHE_CORRUPT, reason }, 'snapshot cache is unusable; ignoring it');
      return undefined;
    };
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return problem(`not JSON: ${describeParseError(err)}`);
    }
    if (doc === null || typeof doc !== 'object') return problem('not a JSON object');
    const { version, historyId, config, secrets } = doc as { version?: unknown; historyId?: unknown; config?: unknown; secrets?: unknown };
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) return problem('missing or bad "version"');
    if (historyId !== undefined && typeof historyId !== 'string') return problem('bad "historyId"');
    const check = checkConfigValue(config);
    if (!check.ok) return problem(check.error);
    return { version, historyId: historyId ?? '', config: check.config, secrets: secretsFromJson(secrets) };
  }

  /** Schedules a write of `snapshot`; returns at once. Failures are logged and counted, never thrown. */
  save(snapshot: CachedSnapshot): void {
    this.pending = snapshot;
    this.writing ??= this.drain();
  }

  /** Resolves once everything saved so far is on disk (or has failed). */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending !== undefined) {
        const snapshot = this.pending;
        this.pending = undefined;
        try {
          await this.write(snapshot);
          this.events.onWrite?.(true);
        } catch (err) {
          this.events.onWrite?.(false);
          this.logger.error({ err, path: this.path, version: snapshot.version }, 'cannot write snapshot cache');
          await rm(this.tmpPath, { force: true }).catch(() => {});
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async write(snapshot: CachedSnapshot): Promise<void> {
    const secrets = snapshot.secrets === undefined ? undefined : secretsToJson(snapshot.secrets);
    const body = `${JSON.stringify({ version: snapshot.version, historyId: snapshot.historyId, savedAt: new Date().toISOString(), config: snapshot.config, secrets })}\n`;
    await mkdir(dirname(this.path), { recursive: true });
    const file = await open(this.tmpPath, 'w', 0o600);
    try {
      await file.writeFile(body, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(this.tmpPath, this.path);
  }
}
