/** Percentiles from latency bucket counts, as Prometheus' histogram_quantile computes them. */

/**
 * The q-quantile (ms) of `counts` (per bucket, not cumulative; the last one counts what is above
 * every bound in `boundsMs`), interpolated linearly within its bucket; 0 when nothing was counted.
 * A quantile in the bucket above every bound is that last bound: nothing more is known.
 */
export function quantileMs(counts: readonly number[], boundsMs: readonly number[], q: number): number {
  let total = 0;
  for (const n of counts) total += n;
  if (total === 0) return 0;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n > 0 && seen + n >= rank) {
      if (i >= boundsMs.length) return boundsMs[boundsMs.length - 1] ?? 0;
      const lower = i === 0 ? 0 : boundsMs[i - 1]!;
      return lower + (boundsMs[i]! - lower) * ((rank - seen) / n);
    }
    seen += n;
  }
  return boundsMs[boundsMs.length - 1] ?? 0;
}
