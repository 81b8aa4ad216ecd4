import { describe, expect, it } from 'vitest';
import { bucket, CoverageTracker, FeatureSet } from './coverage.js';
import { loadTarget } from './fuzzer.js';

describe('bucket', () => {
  it('classes hit counts like AFL', () => {
    const classes = [1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 127, 128, 100000].map(bucket);
    expect(classes).toEqual([0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
  });
});

describe('CoverageTracker', () => {
  it('sees a branch that starts running as a new feature, though V8 merges the block into its parent', async () => {
    const target = await loadTarget('test/fuzz/engine/fixtures/magic.ts');
    const tracker = new CoverageTracker(target.coverageFilter);
    const seen = new FeatureSet();
    const features = (input: string): number => {
      tracker.discard();
      target.run(Buffer.from(input));
      tracker.take();
      return seen.addAll(tracker.features, tracker.length);
    };
    expect(features('AAAA')).toBeGreaterThan(0);
    expect(features('BBBB')).toBe(0);
    // One byte further, each time: something new.
    expect(features('FAAA')).toBeGreaterThan(0);
    expect(features('FUAA')).toBeGreaterThan(0);
    expect(features('FUZA')).toBeGreaterThan(0);
    expect(features('FUAB')).toBe(0);
    expect([...tracker.matchedUrls].some((u) => u.includes('/fixtures/magic.'))).toBe(true);
  });

  it('counts nothing outside the filter', async () => {
    const target = await loadTarget('test/fuzz/engine/fixtures/magic.ts');
    const tracker = new CoverageTracker('/no/such/path/');
    tracker.discard();
    target.run(Buffer.from('FUAA'));
    tracker.take();
    expect(tracker.length).toBe(0);
    expect(tracker.matchedUrls.size).toBe(0);
  });
});
