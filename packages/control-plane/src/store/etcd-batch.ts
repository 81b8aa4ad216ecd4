/**
 * Many independent etcd writes in few requests: transactions of up to MAX_OPS operations and about
 * MAX_BYTES of values each, sent a few at a time. A thousand node records or a hundred new objects
 * then cost a handful of round trips instead of one each, which matters most when etcd is slow
 * (a shutdown marking every node seen, a reconnect storm, a large config written).
 */
import type { Etcd3 } from 'etcd3';
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
    // A transaction needs a comparison: a key's version is never -1 or below, so this one always holds.
    const result = await client
      .if(ops[0]!.key, 'Version', '>', -1)
      .then(
        ...ops.map((w) => {
          if (w.value === undefined) return client.delete().key(w.key);
          const put = client.put(w.key).value(w.value);
          return w.lease === undefined ? put : put.lease(w.lease);
        }),
      )
      .commit();
    for (const w of ops) revisions.set(w.key, Number(result.header.revision));
  });
  return revisions;
}
