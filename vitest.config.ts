import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside each package (and the fuzz engine's tests and the fuzz targets'
// regression runs in test/fuzz), and end-to-end tests in test/ that start real etcd, control planes, data
// planes and backends as processes (run one file at a time: 2 cores).
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Vitest's default is one worker fewer than the cores: on the 2-core machines this suite must
    // finish on in 15 minutes that is one unit-test file at a time, each paying its own import
    // (160 s for 90 s of tests). Two at a time take 103 s. The end-to-end files run after them,
    // one at a time, either way.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One file at a time: each starts its own etcd and several Node processes.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
