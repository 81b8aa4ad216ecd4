/**
 * Content-addressed texts in etcd: `objects/<hash>` holds a text whose SHA-256 is `<hash>`, so one
 * object serves every version that holds the same resource, and no value grows with the config.
 * A text longer than a chunk is stored split (chunking.ts): each chunk is an object of its own and
 * `objects/<hash>.chunks` lists them, so a large pool that changes in one place stores one new chunk.
 *
 * Objects are immutable and never overwritten with other content; writing one again only moves its
 * mod revision, which is what keeps it from the garbage collector (object-gc.ts). Reads go through
 * a TextCache and are checked against their hash.
 */
import type { Etcd3 } from 'etcd3';
import { resourceHash } from '@lb/shared';
import { inParallel } from './bounded-parallel.js';
import { DEFAULT_CHUNK_SIZES, splitText, type ChunkSizes } from './chunking.js';
import { type BatchWrite, writeInBatches } from './etcd-batch.js';
import { CHUNK_LIST_SUFFIX, type EtcdKeys } from './keys.js';
import { TextCache } from './text-cache.js';

/** etcd calls in flight at once for one batch of objects. */
const PARALLEL_CALLS = 16;

export interface ObjectStoreOptions {
  client: Etcd3;
  keys: EtcdKeys;
  /** Characters of texts kept in memory. Default 64 Mi (several versions of a 100,000-backend config). */
  cacheChars?: number;
  chunkSizes?: ChunkSizes;
}

/** A text to store: `hash` is resourceHash(text); `value` is the parsed text when the caller has it, kept for later reads. */
export interface StoredText {
  hash: string;
  text: string;
  value?: unknown;
}

/** An object key as listed, split into its hash and whether it is a chunk list. */
export interface ObjectKey {
  key: string;
  hash: string;
  chunkList: boolean;
}

export class EtcdObjectStore {
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly cache: TextCache;
  private readonly chunkSizes: ChunkSizes;

  constructor(options: ObjectStoreOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.cache = new TextCache(options.cacheChars ?? 64 * 1024 * 1024);
    this.chunkSizes = options.chunkSizes ?? DEFAULT_CHUNK_SIZES;
  }

  /**
   * Writes texts under their hashes. Always written, even when etcd may hold them:
   * the write is what protects a new version's objects from a collection running meanwhile.
   */
  async put(items: readonly StoredText[]): Promise<void> {
    await writeInBatches(this.client, this.writesOf(items));
    this.remember(items);
  }

  /**
   * The etcd writes that store `items` (split where long), for a caller that puts them in a
   * transaction of its own (a small commit: etcd-config-store.ts); remember() them after.
   */
  writesOf(items: readonly StoredText[]): BatchWrite[] {
    const writes: BatchWrite[] = [];
    for (const item of items) {
      const chunks = splitText(item.text, this.chunkSizes);
      if (chunks.length === 1) writes.push({ key: this.keys.object(item.hash), value: item.text });
      else {
        const hashes = chunks.map((chunk) => resourceHash(chunk));
        chunks.forEach((chunk, i) => {
          writes.push({ key: this.keys.object(hashes[i]!), value: chunk });
        });
        writes.push({ key: this.keys.chunkList(item.hash), value: JSON.stringify(hashes) });
      }
    }
    return writes;
  }

  /**
   * Keeps texts in the cache. Safe whether or not etcd got them: a text is cached under its own
   * hash, and only a committed manifest, whose commit wrote them, makes anyone read them.
   */
  remember(items: readonly StoredText[]): void {
    for (const item of items) this.cache.add(item.hash, item.text, item.value);
  }

  /** The text stored under `hash`; throws when it is missing or does not match its hash. */
  async text(hash: string): Promise<string> {
    const cached = this.cache.text(hash);
    if (cached !== undefined) return cached;
    // One range read finds the text or its chunk list, whichever is stored.
    const found = await this.client.getAll().prefix(this.keys.object(hash)).strings();
    let text = found[this.keys.object(hash)];
    const list = found[this.keys.chunkList(hash)];
    if (text === undefined && list !== undefined) {
      const parts = await inParallel(JSON.parse(list) as string[], PARALLEL_CALLS, (chunk) => this.chunk(chunk));
      text = parts.join('');
    }
    if (text === undefined) throw new Error(`object ${hash} is missing from the store`);
    if (resourceHash(text) !== hash) throw new Error(`object ${hash} does not match its hash`);
    this.cache.add(hash, text);
    return text;
  }

  /** The parsed text under `hash`: deep-frozen and shared, never to be changed by the caller. */
  async value(hash: string): Promise<unknown> {
    if (this.cache.text(hash) === undefined) await this.text(hash);
    return this.cache.value(hash);
  }

  private async chunk(hash: string): Promise<string> {
    const text = await this.client.get(this.keys.object(hash)).string();
    if (text === null) throw new Error(`chunk ${hash} is missing from the store`);
    return text;
  }

  /** The chunk hashes of a text stored split, from etcd (the garbage collector's mark phase). */
  async chunksOf(hash: string): Promise<string[]> {
    const list = await this.client.get(this.keys.chunkList(hash)).string();
    return list === null ? [] : (JSON.parse(list) as string[]);
  }

  /** Every object key in the store. */
  async list(): Promise<ObjectKey[]> {
    const keys = await this.client.getAll().prefix(this.keys.objectsPrefix).keys();
    return keys.map((key) => {
      const rest = key.slice(this.keys.objectsPrefix.length);
      const chunkList = rest.endsWith(CHUNK_LIST_SUFFIX);
      return { key, hash: chunkList ? rest.slice(0, -CHUNK_LIST_SUFFIX.length) : rest, chunkList };
    });
  }

  /** Deletes `key` unless it was written at or after `revision`; true when deleted. */
  async deleteUnlessWrittenSince(key: string, revision: string): Promise<boolean> {
    const result = await this.client.if(key, 'Mod', '<', revision).then(this.client.delete().key(key)).commit();
    return result.succeeded;
  }
}
