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
  return JSON.stringify({ version: pointer.version, historyId: pointer.historyId });
}

/** Throws on anything but a pointer this code wrote. */
export function parsePointer(text: string, key: string): ConfigPointer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const { version, historyId } = (parsed ?? {}) as Partial<ConfigPointer>;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0 || typeof historyId !== 'string') {
    throw new Error(`${key} holds "${text.slice(0, 100)}", not a config pointer {"version": n, "historyId": "…"}`);
  }
  return { version, historyId };
}
