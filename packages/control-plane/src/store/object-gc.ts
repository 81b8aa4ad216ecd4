/**
 * Deletes the objects no remaining version refers to (after retention pruned versions, or a write
 * that failed after writing its objects). Mark and sweep, safe against writers running meanwhile:
 *
 * 1. Move the fence (`config/gc-fence`); its new mod revision R bounds the sweep.
 * 2. Mark everything the manifests listed now refer to: tables, resources, chunks.
 * 3. Delete each unmarked object only if it was last written before R (one compare per delete).
 *
 * A writer reads the fence before writing its objects and compares it in its commit transaction.
 * One that read it before step 1 fails its commit and retries (writing its objects again); one
 * that read it after wrote its objects after R, so step 3 leaves them. Either way no manifest ever
 * names a deleted object. Objects the writer's base version holds are marked through its manifest.
 */
import type { Etcd3 } from 'etcd3';
import { inParallel } from './bounded-parallel.js';
import type { EtcdObjectStore } from './etcd-object-store.js';
import type { EtcdKeys } from './keys.js';
import type { ResourceTable, VersionManifest } from './version-manifest.js';

export interface ObjectCollectorOptions {
  client: Etcd3;
  keys: EtcdKeys;
  objects: EtcdObjectStore;
  /** Every stored manifest, read after the fence moved. */
  manifests(): Promise<VersionManifest[]>;
}

export class ObjectCollector {
  /** What each table refers to, remembered between runs (tables are immutable): hashes interned. */
  private readonly refsByTable = new Map<string, readonly string[]>();
  private readonly chunksByObject = new Map<string, readonly string[]>();
  private readonly interned = new Map<string, string>();

  constructor(private readonly options: ObjectCollectorOptions) {}

  /** One mark and sweep; resolves with the number of objects deleted. */
  async collect(): Promise<number> {
    const { client, keys, objects } = this.options;
    const moved = await client.put(keys.gcFence).value(new Date().toISOString()).exec();
    const fence = moved.header.revision;
    const manifests = await this.options.manifests();
    const marked = new Set<string>();
    const tables = new Set(manifests.map((m) => m.resources));
    for (const table of tables) {
      marked.add(table);
      for (const hash of await this.refsOf(table)) marked.add(hash);
    }
    for (const table of this.refsByTable.keys()) if (!tables.has(table)) this.refsByTable.delete(table);
    const listed = await objects.list();
    const lists = listed.filter((o) => o.chunkList && marked.has(o.hash));
    for (const list of lists) for (const chunk of await this.chunksOf(list.hash)) marked.add(chunk);
    const present = new Set(lists.map((l) => l.hash));
    for (const hash of this.chunksByObject.keys()) if (!present.has(hash)) this.chunksByObject.delete(hash);
    this.forgetUnused();
    const doomed = listed.filter((o) => !marked.has(o.hash));
    const deleted = await inParallel(doomed, 16, (o) => objects.deleteUnlessWrittenSince(o.key, fence));
    return deleted.filter(Boolean).length;
  }

  /** Keeps interned only the hashes still remembered, so the table does not grow with history. */
  private forgetUnused(): void {
    this.interned.clear();
    for (const refs of [...this.refsByTable.values(), ...this.chunksByObject.values()]) for (const hash of refs) this.interned.set(hash, hash);
  }

  private async refsOf(table: string): Promise<readonly string[]> {
    const known = this.refsByTable.get(table);
    if (known !== undefined) return known;
    const value = (await this.options.objects.value(table)) as ResourceTable;
    const refs = Object.values(value).flatMap((names) => Object.values(names).map((hash) => this.intern(hash)));
    this.refsByTable.set(table, refs);
    return refs;
  }

  private async chunksOf(hash: string): Promise<readonly string[]> {
    const known = this.chunksByObject.get(hash);
    if (known !== undefined) return known;
    const chunks = (await this.options.objects.chunksOf(hash)).map((c) => this.intern(c));
    this.chunksByObject.set(hash, chunks);
    return chunks;
  }

  private intern(hash: string): string {
    const known = this.interned.get(hash);
    if (known !== undefined) return known;
    this.interned.set(hash, hash);
    return hash;
  }
}
