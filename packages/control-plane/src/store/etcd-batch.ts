/**
 * Many independent etcd writes in few requests: transactions of up to MAX_OPS operations and about
 * MAX_BYTES of values each, sent a few at a time. A thousand node records or a hundred new objects
 * then cost a handful of round trips instead of one each, which matters most when etcd is slow
 * (a shutdown marking every node seen, a reconnect storm, a large config written).
 */
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import { inParallel } from './bounded-parallel.js';

/** etcd's default --max-txn-ops is 128. */
const MAX_OPS = 100;
/** Well inside etcd's default 1.5 MiB request limit. */
const MAX_BYTES = 1024 * 1024;

export interface BatchWrite {
  key: string;
  /** The value to put; undefined deletes the key. */
  value?: string;
  /** A lease to put the key on. */
  lease?: string;
}

/**
 * A transaction that always runs its `then` branch. etcd wants a comparison: a key's version is
 * never -1 or below, so this one always holds.
 */
export function unconditional(client: Etcd3, anyKey: string): ComparatorBuilder {
  return client.if(anyKey, 'Version', '>', -1);
}

/** The etcd operation that carries out one write. */
export function operationOf(client: Etcd3, w: BatchWrite) {
  if (w.value === undefined) return client.delete().key(w.key);
  const put = client.put(w.key).value(w.value);
  return w.lease === undefined ? put : put.lease(w.lease);
}

/** Whether `writes` fit in one transaction beside `otherOps` operations of their own. */
export function fitsOneTransaction(writes: readonly BatchWrite[], otherOps: number): boolean {
  if (writes.length + otherOps > MAX_OPS) return false;
  let bytes = 0;
  for (const w of writes) bytes += w.key.length + (w.value?.length ?? 0);
  return bytes <= MAX_BYTES;
}

/** Resolves with the revision each key was written (or deleted) at. */
export async function writeInBatches(client: Etcd3, writes: readonly BatchWrite[]): Promise<Map<string, number>> {
  const batches: BatchWrite[][] = [];
  let batch: BatchWrite[] = [];
  let bytes = 0;
  for (const w of writes) {
    const size = w.key.length + (w.value?.length ?? 0);
    if (batch.length > 0 && (batch.length >= MAX_OPS || bytes + size > MAX_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(w);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  const revisions = new Map<string, number>();
  await inParallel(batches, 4, async (ops) => {
    const result = await unconditional(client, ops[0]!.key)
      .then(...ops.map((w) => operationOf(client, w)))
      .commit();
    for (const w of ops) revisions.set(w.key, Number(result.header.revision));
  });
  return revisions;
}
