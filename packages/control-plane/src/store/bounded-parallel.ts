/**
 * Runs `work` over `items` with at most `limit` calls in flight: a version of a few hundred
 * resources is read or written in parallel without opening a few hundred etcd calls at once.
 * Rejects with the first failure (the calls already started still finish).
 */
export async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const at = next++;
      results[at] = await work(items[at]!);
    }
  });
  await Promise.all(lanes);
  return results;
}
