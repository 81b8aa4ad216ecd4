import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside each package (and the fuzz engine's tests and the fuzz targets'
// regression runs in test/fuzz), and end-to-end tests in test/ that start real etcd, control planes, data
// planes and backends as processes (run one file at a time: 2 cores).
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
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
