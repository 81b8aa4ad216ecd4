/**
 * ConfigStore on etcd (layout in keys.ts, documented in the README): a small manifest per version,
 * resources as content-addressed objects shared by every version that holds them, and one guarded
 * transaction per commit. The objects a version adds are written before its transaction (they are
 * invisible until a manifest names them); the transaction itself carries only the manifest and the
 * pointer, so no etcd request grows with the config.
 */
import { randomUUID } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { emptyConfig, resourceHash, resourceKey, type Config, type ConfigVersionRecord, type Logger } from '@lb/shared';
import type { ConfigPointer, ConfigStore, ListVersionsOptions, StoredConfig, VersionSummary } from './config-store.js';
import { encodeConfig, resourceTable, type EncodedConfig, type EncodedResource } from './encoded-config.js';
import { deepFreeze } from './deep-freeze.js';
import { fitsOneTransaction, operationOf, unconditional, writeInBatches } from './etcd-batch.js';
import { guarded } from './etcd-client.js';
import { EtcdObjectStore, type StoredText } from './etcd-object-store.js';
import { inParallel } from './bounded-parallel.js';
import { EtcdKeys } from './keys.js';
import { ObjectCollector } from './object-gc.js';
import { manifestOf, parsePointer, pointerAfter, pointerText, summaryOf, type ResourceTable, type VersionManifest } from './version-manifest.js';

export interface EtcdConfigStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  /** Overall deadline of one store operation, retries included. */
  deadlineMs?: number;
  /** How often to re-read the pointer even without watch events (a missed event heals by then). */
  resyncIntervalMs?: number;
  /** Characters of object texts kept in memory (see EtcdObjectStore). */
  cacheChars?: number;
}

/** What a commit compares: the pointer's text as read (null: absent) and the collector's fence revision. */
interface EtcdGuard {
  pointer: string | null;
  fence: string;
}

interface BuiltConfig {
  config: Config;
  encoded: EncodedConfig;
}

/** The config the current pointer named when this replica last read or wrote it, by the pointer's text. */
interface KnownHead extends BuiltConfig {
  pointerText: string;
}

/** Configs built from resource tables, kept for the few tables read last (current and recent versions). */
const BUILT_CONFIGS_KEPT = 4;

function frozenConfig(sections: Record<string, Record<string, unknown>>): Config {
  for (const section of Object.values(sections)) Object.freeze(section);
  return Object.freeze(sections) as unknown as Config;
}

export class EtcdConfigStore implements ConfigStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly logger: Logger;
  private readonly deadlineMs: number;
  private readonly resyncIntervalMs: number;
  private readonly objects: EtcdObjectStore;
  private readonly collector: ObjectCollector;
  private readonly stops = new Set<() => void>();
  private readonly built = new Map<string, BuiltConfig>();
  private head: KnownHead | undefined;

  constructor(options: EtcdConfigStoreOptions) {
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix);
    this.logger = options.logger;
    this.deadlineMs = options.deadlineMs ?? 4_000;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 5_000;
    this.objects = new EtcdObjectStore({
      client: this.client,
      keys: this.keys,
      ...(options.cacheChars !== undefined ? { cacheChars: options.cacheChars } : {}),
    });
    this.collector = new ObjectCollector({ client: this.client, keys: this.keys, objects: this.objects, manifests: () => this.manifests() });
  }

  private pointerOf(text: string | null): ConfigPointer {
    return text === null ? { version: 0, historyId: '' } : parsePointer(text, this.keys.current);
  }

  /** The pointer and the collector's fence, read at one revision in one request. */
  private async readHead(): Promise<{ pointer: ConfigPointer; guard: EtcdGuard }> {
    const result = await unconditional(this.client, this.keys.current).then(this.client.get(this.keys.current), this.client.get(this.keys.gcFence)).commit();
    const [pointerRead, fenceRead] = result.responses.map((r) => r.response_range?.kvs[0]);
    const text = pointerRead === undefined ? null : pointerRead.value.toString();
    return { pointer: this.pointerOf(text), guard: { pointer: text, fence: fenceRead?.mod_revision ?? '0' } };
  }

  private async manifest(version: number): Promise<VersionManifest | undefined> {
    const text = await this.client.get(this.keys.manifest(version)).string();
    return text === null ? undefined : (JSON.parse(text) as VersionManifest);
  }

  private async manifests(): Promise<VersionManifest[]> {
    const values = await this.client.getAll().prefix(this.keys.manifestsPrefix).strings();
    return Object.values(values).map((v) => JSON.parse(v) as VersionManifest);
  }

  /** The config a resource table describes, from cached objects where possible. */
  private async build(tableHash: string): Promise<BuiltConfig> {
    const known = this.built.get(tableHash);
    if (known !== undefined) return known;
    const table = (await this.objects.value(tableHash)) as ResourceTable;
    const entries = Object.entries(table).flatMap(([section, names]) => Object.entries(names).map(([name, hash]) => ({ section, name, hash })));
    const texts = await inParallel(entries, 16, (e) => this.objects.text(e.hash));
    const sections: Record<string, Record<string, unknown>> = {};
    for (const section of Object.keys(table)) sections[section] = {};
    const resources = new Map<string, EncodedResource>();
    let at = 0;
    for (const e of entries) {
      const value = await this.objects.value(e.hash);
      sections[e.section]![e.name] = value;
      resources.set(resourceKey(e.section, e.name), { section: e.section, name: e.name, value, json: texts[at++]!, hash: e.hash });
    }
    const config = frozenConfig(sections);
    // The byte count needs the whole walk anyway; encodeConfig reuses every text above.
    return this.keepBuilt(tableHash, { config, encoded: encodeConfig(config, { resources, sections: Object.keys(table), bytes: 0 }) });
  }

  private keepBuilt(tableHash: string, built: BuiltConfig): BuiltConfig {
    this.built.set(tableHash, built);
    for (const oldest of this.built.keys()) {
      if (this.built.size <= BUILT_CONFIGS_KEPT) break;
      this.built.delete(oldest);
    }
    return built;
  }

  /**
   * One etcd request when the pointer has not moved since this replica last read or wrote it (the
   * common case: the periodic re-read, the feed after a local write, the next write): the pointer
   * text names one config forever (its version within its history), so the config is reused.
   */
  current(): Promise<StoredConfig> {
    return guarded('reading the current config', this.deadlineMs, async () => {
      const { pointer, guard } = await this.readHead();
      if (pointer.version === 0 || guard.pointer === null) {
        const config = emptyConfig();
        return { ...pointer, config, encoded: encodeConfig(config), guard };
      }
      const known = this.head;
      if (known !== undefined && known.pointerText === guard.pointer) return { ...pointer, config: known.config, encoded: known.encoded, guard };
      // Manifests are immutable, so reading the pointer and then its manifest is consistent.
      const manifest = await this.manifest(pointer.version);
      if (!manifest) throw new Error(`version ${pointer.version} is current but its manifest is missing`);
      const { config, encoded } = await this.build(manifest.resources);
      this.head = { pointerText: guard.pointer, config, encoded };
      return { ...pointer, config, encoded, guard };
    });
  }

  pointer(): Promise<ConfigPointer> {
    return guarded('reading the current version', this.deadlineMs, async () => this.pointerOf(await this.client.get(this.keys.current).string()));
  }

  async currentVersion(): Promise<number> {
    return (await this.pointer()).version;
  }

  getVersion(version: number): Promise<ConfigVersionRecord | undefined> {
    if (version < 1) return Promise.resolve(undefined);
    return guarded(`reading version ${version}`, this.deadlineMs, async () => {
      const manifest = await this.manifest(version);
      if (manifest === undefined) return undefined;
      return { ...summaryOf(manifest), config: (await this.build(manifest.resources)).config };
    });
  }

  listVersions(options: ListVersionsOptions): Promise<VersionSummary[]> {
    return guarded('listing versions', this.deadlineMs, async () => {
      const start = this.keys.manifest(1);
      // Padded keys sort numerically, so "below `before`" is a key range.
      const end = options.before === undefined ? `${this.keys.manifest(10 ** 12 - 1)}\u0000` : this.keys.manifest(options.before);
      if (end <= start) return [];
      const values = await this.client.getAll().inRange({ start, end }).sort('Key', 'Descend').limit(options.limit).strings();
      return Object.values(values)
        .map((v) => summaryOf(JSON.parse(v) as VersionManifest))
        .sort((a, b) => b.version - a.version);
    });
  }

  commit(record: ConfigVersionRecord, encoded: EncodedConfig, base: StoredConfig): Promise<boolean> {
    return guarded(`committing version ${record.version}`, this.deadlineMs, async () => {
      const guard = base.guard as EtcdGuard;
      const historyId = base.historyId === '' ? randomUUID() : base.historyId;
      // Objects the base version already refers to are safe from the collector while it is current;
      // every other one is written now (again, if etcd has it: see EtcdObjectStore.put).
      const held = new Set<string>();
      for (const r of base.encoded.resources.values()) held.add(r.hash);
      const fresh = new Map<string, StoredText>();
      for (const r of encoded.resources.values()) if (!held.has(r.hash)) fresh.set(r.hash, { hash: r.hash, text: r.json, value: r.value });
      const table = resourceTable(encoded);
      const tableText = JSON.stringify(table);
      const tableHash = resourceHash(tableText);
      const objects = [...fresh.values(), { hash: tableHash, text: tableText, value: table }];
      // A small change (one pool of a large config) goes in the commit's own transaction: one
      // request instead of two. A large one is written first, in batches, as the layout requires.
      const objectWrites = this.objects.writesOf(objects);
      const inline = fitsOneTransaction(objectWrites, 2);
      if (!inline) await writeInBatches(this.client, objectWrites);
      this.objects.remember(objects);
      const manifest = manifestOf(record, historyId, tableHash, encoded.bytes);
      const after = pointerText(pointerAfter(base, record, historyId));
      // Version 0 is "no pointer yet": compare create revision 0, which etcd reads as "key absent".
      const txn =
        guard.pointer === null ? this.client.if(this.keys.current, 'Create', '==', 0) : this.client.if(this.keys.current, 'Value', '==', guard.pointer);
      const result = await txn
        .and(this.keys.gcFence, 'Mod', '==', guard.fence)
        .then(
          ...(inline ? objectWrites.map((w) => operationOf(this.client, w)) : []),
          this.client.put(this.keys.manifest(record.version)).value(JSON.stringify(manifest)),
          this.client.put(this.keys.current).value(after),
        )
        .commit();
      if (!result.succeeded) return false;
      // What the next read of the pointer will find: reused by current() instead of read back.
      const written = this.keepBuilt(tableHash, { config: deepFreeze(record.config), encoded });
      this.head = record.staged === true ? { pointerText: after, config: base.config, encoded: base.encoded } : { pointerText: after, ...written };
      return true;
    });
  }

  promote(version: number, seen: ConfigPointer): Promise<boolean> {
    return guarded(`making version ${version} current`, this.deadlineMs, async () => {
      if (version <= seen.version) return false;
      const manifest = await this.manifest(version);
      if (manifest === undefined || manifest.historyId !== seen.historyId) return false;
      const staged = seen.staged !== undefined && seen.staged > version ? seen.staged : undefined;
      const result = await this.client
        .if(this.keys.current, 'Value', '==', pointerText(seen))
        .then(this.client.put(this.keys.current).value(pointerText({ version, historyId: seen.historyId, ...(staged ? { staged } : {}) })))
        .commit();
      return result.succeeded;
    });
  }

  forkHistory(seen: ConfigPointer): Promise<string | undefined> {
    return guarded('starting a new history', this.deadlineMs, async () => {
      const historyId = randomUUID();
      const result = await this.client
        .if(this.keys.current, 'Value', '==', pointerText(seen))
        .then(this.client.put(this.keys.current).value(pointerText({ ...seen, historyId })))
        .commit();
      return result.succeeded ? historyId : undefined;
    });
  }

  pruneVersions(below: number, keep: ReadonlySet<number>): Promise<number> {
    return guarded(`pruning versions below ${below}`, this.deadlineMs, async () => {
      if (below <= 1) return 0;
      const keys = await this.client
        .getAll()
        .inRange({ start: this.keys.manifest(1), end: this.keys.manifest(below) })
        .keys();
      const doomed = keys.filter((key) => !keep.has(Number(key.slice(this.keys.manifestsPrefix.length))));
      // A hundred at a time: a first run over a long history must not flood etcd.
      for (let at = 0; at < doomed.length; at += 100) {
        await Promise.all(doomed.slice(at, at + 100).map((key) => this.client.delete().key(key).exec()));
      }
      return doomed.length;
    });
  }

  /**
   * Moves a store written before manifests existed (`config/versions/<n>` records holding whole
   * configs, a bare number as pointer) to this layout, once, at start: every record becomes a
   * manifest over objects, the pointer gets a new history, and the old records go. Idempotent and
   * safe to run on every replica at once (the pointer is swapped in a guarded transaction);
   * resolves with the number of versions moved.
   */
  migrateLegacyVersions(): Promise<number> {
    return guarded('moving versions to manifests', this.deadlineMs * 30, async () => {
      const legacyPrefix = this.keys.manifestsPrefix.replace(/manifests\/$/, 'versions/');
      const pointer = await this.client.get(this.keys.current).string();
      if (pointer === null || !/^\d+$/.test(pointer)) return 0;
      const historyId = randomUUID();
      const keys = await this.client.getAll().prefix(legacyPrefix).keys();
      for (const key of keys.sort()) {
        const text = await this.client.get(key).string();
        if (text === null) continue;
        const record = JSON.parse(text) as ConfigVersionRecord;
        const encoded = encodeConfig(record.config);
        const table = resourceTable(encoded);
        const tableText = JSON.stringify(table);
        const tableHash = resourceHash(tableText);
        const items = [...encoded.resources.values()].map((r) => ({ hash: r.hash, text: r.json }));
        await this.objects.put([...items, { hash: tableHash, text: tableText }]);
        await this.client
          .put(this.keys.manifest(record.version))
          .value(JSON.stringify(manifestOf(record, historyId, tableHash, encoded.bytes)))
          .exec();
      }
      const swapped = await this.client
        .if(this.keys.current, 'Value', '==', pointer)
        .then(this.client.put(this.keys.current).value(pointerText({ version: Number(pointer), historyId })))
        .commit();
      if (!swapped.succeeded) return 0;
      await this.client.delete().prefix(legacyPrefix).exec();
      this.logger.warn({ versions: keys.length, history: historyId }, 'moved the config history to manifests over objects (the etcd layout of this version)');
      return keys.length;
    });
  }

  collectGarbage(): Promise<number> {
    // A sweep may take a while on a large store; each etcd call still has its own deadline.
    return guarded('collecting unreferenced objects', this.deadlineMs * 8, () => this.collector.collect());
  }

  watchCurrent(onChange: () => void): () => void {
    let stopped = false;
    // The watch resumes from its last revision after a reconnect and fires `connected`; the
    // periodic resync covers everything else (a cancelled watch, the watch's own long backoff).
    const watcher = this.client.watch().key(this.keys.current).watcher();
    watcher.on('connected', () => onChange());
    watcher.on('put', () => onChange());
    watcher.on('disconnected', (err) => this.logger.warn({ err: err.message }, 'etcd watch disconnected; reconnecting'));
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'etcd watch error'));
    const resync = setInterval(() => onChange(), this.resyncIntervalMs);
    resync.unref();
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      this.stops.delete(stop);
      clearInterval(resync);
      watcher.cancel().catch(() => undefined);
    };
    this.stops.add(stop);
    return stop;
  }

  ping(): Promise<void> {
    return guarded('answering a ping', this.deadlineMs, async () => {
      await this.client.get(this.keys.current).string();
    });
  }

  /** Stops the watches; the etcd client belongs to whoever created it (main.ts) and stays open. */
  async close(): Promise<void> {
    for (const stop of [...this.stops]) stop();
  }
}
