import cluster from 'node:cluster';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterPrimary } from '../src/cluster/primary.js';
import { silentLogger } from './helpers.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ClusterPrimary with stand-in workers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lb-cluster-'));
  const log = join(dir, 'workers.log');
  const marker = join(dir, 'fail-next');
  let primary: ClusterPrimary;

  const entries = () =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' ') as [string, 'ok' | 'fail'])
      : [];

  beforeAll(async () => {
    process.env.WORKER_LOG = log;
    process.env.FAIL_MARKER = marker;
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./fixtures/fake-worker.mjs', import.meta.url)), execArgv: [], silent: true });
    primary = new ClusterPrimary({
      workers: 2,
      controlPlanes: [],
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      nodeId: 't',
      logger: silentLogger,
      drainTimeoutMs: 500,
    });
    await primary.start();
  });

  afterAll(async () => {
    await primary.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('kills and replaces a worker that could not apply its init snapshot', async () => {
    expect(entries().map((e) => e[1])).toEqual(['ok', 'ok']);
    // The next worker to start will refuse its init: make one start by killing a serving worker.
    writeFileSync(marker, '');
    process.kill(Number(entries()[0]![0]), 'SIGKILL');
    await until('a worker that refused its init', () => entries().some((e) => e[1] === 'fail'));
    const failed = Number(entries().find((e) => e[1] === 'fail')![0]);
    // It must not stay up with a config its siblings do not run; a good replacement takes its place.
    await until('the failed worker to be gone', () => !alive(failed), 5_000);
    await until('a good replacement', () => entries().filter((e) => e[1] === 'ok' && alive(Number(e[0]))).length === 2, 5_000);
  });
});
