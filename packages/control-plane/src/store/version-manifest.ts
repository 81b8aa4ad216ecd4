/**
 * What etcd holds per version and in the pointer (keys.ts). A manifest is small whatever the config
 * size: the history fields and the hash of the version's resource table, an object mapping
 * section → name → resource hash (encoded-config.ts), itself stored content-addressed.
 */
import type { ConfigVersionRecord } from '@lb/shared';
import type { ConfigPointer, VersionSummary } from './config-store.js';

export interface VersionManifest extends VersionSummary {
  /** The history the version was written in. */
  historyId: string;
  /** Hash of the resource table object. */
  resources: string;
  /** Size of the config document (bytes of its JSON). */
  bytes: number;
}

export type ResourceTable = Record<string, Record<string, string>>;

export function manifestOf(record: ConfigVersionRecord, historyId: string, table: string, bytes: number): VersionManifest {
  const { config: _config, ...summary } = record;
  return { ...summary, historyId, resources: table, bytes };
}

/** The history entry the API shows: the manifest without its storage fields. */
export function summaryOf(manifest: VersionManifest): VersionSummary {
  const { historyId: _history, resources: _resources, bytes: _bytes, ...summary } = manifest;
  return summary;
}

export function pointerText(pointer: ConfigPointer): string {
  // `staged` only when there is one: a store that never staged keeps the pointer text it had.
  return JSON.stringify(
    pointer.staged !== undefined && pointer.staged > pointer.version
      ? { version: pointer.version, historyId: pointer.historyId, staged: pointer.staged }
      : { version: pointer.version, historyId: pointer.historyId },
  );
}

/** The pointer after committing `record` on top of `base`: moved to it, or (staged) naming it as staged. */
export function pointerAfter(base: ConfigPointer, record: ConfigVersionRecord, historyId: string): ConfigPointer {
  if (record.staged === true) return { version: base.version, historyId, staged: record.version };
  // A plain write above staged versions leaves them below current: they can no longer be rolled out.
  return { version: record.version, historyId };
}

/** Throws on anything but a pointer this code wrote. */
export function parsePointer(text: string, key: string): ConfigPointer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const { version, historyId, staged } = (parsed ?? {}) as Partial<ConfigPointer>;
  if (
    typeof version !== 'number' ||
    !Number.isSafeInteger(version) ||
    version < 0 ||
    typeof historyId !== 'string' ||
    (staged !== undefined && (typeof staged !== 'number' || !Number.isSafeInteger(staged)))
  ) {
    throw new Error(`${key} holds "${text.slice(0, 100)}", not a config pointer {"version": n, "historyId": "…"}`);
  }
  return staged !== undefined && staged > version ? { version, historyId, staged } : { version, historyId };
}
