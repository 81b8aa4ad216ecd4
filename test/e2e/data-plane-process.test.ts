/**
 * The lb-data-plane process on its own, without a control plane: flag errors, starting from the
 * cache file, serving while every control plane is down, and a clean exit on SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { get } from '../support/http.js';
import { allocatorInUse, jemallocLibrary } from '../../packages/data-plane/src/runtime/allocator.js';
import { DataPlane } from '../support/planes.js';
import { freePort, waitFor } from '../support/wait.js';

const DP_MAIN = fileURLToPath(new URL('../../packages/data-plane/dist/main.js', import.meta.url));
const ALLOCATOR = fileURLToPath(new URL('../../packages/data-plane/dist/runtime/allocator.js', import.meta.url));

describe('lb-data-plane process', () => {
  let one: Backend;
  let two: Backend;

  beforeAll(async () => {
    one = await Backend.start('one');
    two = await Backend.start('two');
  });
  afterAll(async () => {
    await one.close();
    await two.close();
  });

  it('exits with code 2 and a message on a bad flag', () => {
    const missing = spawnSync(process.execPath, [DP_MAIN], { encoding: 'utf8', env: { ...process.env, LB_CONTROL_PLANE: '' } });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--control-plane/);
    const bad = spawnSync(process.execPath, [DP_MAIN, '--control-plane', '127.0.0.1:1', '--listen', 'nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--listen "nope"/);
    for (const [flag, value] of [
      ['--http-server', 'apache'],
      ['--upstream-client', 'curl'],
      ['--upstream-io', 'pipes'],
      ['--l4-io', 'pipes'],
      ['--http-io', 'pipes'],
    ] as const) {
      const wrong = spawnSync(process.execPath, [DP_MAIN, '--control-plane', '127.0.0.1:1', flag, value], { encoding: 'utf8' });
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toContain(`${flag} must be one of`);
    }
    const report = spawnSync(process.execPath, [DP_MAIN, '--control-plane', '127.0.0.1:1', '--traffic-report-ms', '50'], { encoding: 'utf8' });
    expect(report.status).toBe(2);
    expect(report.stderr).toContain('--traffic-report-ms must be 0 (off) or a whole number of milliseconds of at least 100');
    for (const [flag, value] of [
      ['--client-http2-ping-interval-ms', '10'],
      ['--upstream-http2-ping-interval-ms', '10'],
      ['--upstream-http2-ping-interval-ms', 'soon'],
    ] as const) {
      const ping = spawnSync(process.execPath, [DP_MAIN, '--control-plane', '127.0.0.1:1', flag, value], { encoding: 'utf8' });
      expect(ping.status).toBe(2);
      expect(ping.stderr).toContain(`${flag} must be 0 (never) or a whole number of at least 1000`);
    }
  });

  it('serves from its cache file while no control plane answers, then exits 0 on SIGTERM', async () => {
    const cacheFile = join(mkdtempSync(join(tmpdir(), 'lb-dp-e2e-')), 'snapshot.json');
    writeFileSync(
      cacheFile,
      JSON.stringify({
        version: 12,
        config: {
          pools: {
            web: {
              algorithm: 'round_robin',
              backends: [
                { id: 'one', address: one.address },
                { id: 'two', address: two.address },
              ],
            },
          },
          routes: { all: { match: {}, pools: [{ pool: 'web', weight: 1 }] } },
        },
      }),
    );
    const dp = await DataPlane.start({ controlPlanes: [`127.0.0.1:${await freePort()}`], nodeId: 'dp-cache', cacheFile });
    try {
      const config = (await (await fetch(`${dp.adminUrl}/config`)).json()) as { version: number; source: string };
      expect(config).toMatchObject({ version: 12, source: 'cache' });
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const res = await get(`${dp.url}/`);
        expect(res.status).toBe(200);
        names.add(String(res.headers['x-backend']));
      }
      expect(names).toEqual(new Set(['one', 'two']));
      const metrics = await (await fetch(`${dp.adminUrl}/metrics`)).text();
      expect(metrics).toContain('lb_dp_config_version 12');
      expect(metrics).toContain('lb_dp_control_plane_connected 0');
    } finally {
      expect(await dp.stop()).toBe(0);
    }
  });

  it('runs on jemalloc when its launcher preloads it, and says which malloc and which Node it got', async () => {
    // deploy/bootstrap.sh installs Debian's libjemalloc2; the launchers (here the tests' harness,
    // as deploy/local-stack.mjs, the image and the systemd unit) preload it.
    const library = jemallocLibrary();
    expect(library).toBeDefined();
    const dp = await DataPlane.start({ controlPlanes: [`127.0.0.1:${await freePort()}`], nodeId: 'dp-malloc', waitReady: false, logLevel: 'info' });
    try {
      const line = await waitFor(
        () =>
          dp.process
            .logs()
            .split('\n')
            .find((l) => l.includes('data plane listening')),
        { message: 'the listening line' },
      );
      // The harness starts it with the Node that runs the tests.
      expect(JSON.parse(line)).toMatchObject({ nodeId: 'dp-malloc', allocator: 'jemalloc', node: process.version });
    } finally {
      expect(await dp.stop()).toBe(0);
    }
    // What a process started without the preload reports, and with it.
    const probe = `import(${JSON.stringify(ALLOCATOR)}).then((m) => console.log(m.allocatorInUse()))`;
    const { LD_PRELOAD: _, ...plain } = process.env;
    expect(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: plain }).stdout.trim()).toBe('system');
    expect(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...plain, LD_PRELOAD: library } }).stdout.trim()).toBe('jemalloc');
    // The test runner itself was started without it.
    expect(allocatorInUse()).toBe(process.env.LD_PRELOAD?.includes('jemalloc') ? 'jemalloc' : 'system');
  });

  it('starts unready with a corrupt cache file instead of crashing', async () => {
    const cacheFile = join(mkdtempSync(join(tmpdir(), 'lb-dp-e2e-')), 'snapshot.json');
    writeFileSync(cacheFile, '{"version": 3, "config": {');
    const dp = await DataPlane.start({ controlPlanes: [`127.0.0.1:${await freePort()}`], nodeId: 'dp-corrupt', cacheFile, waitReady: false });
    try {
      expect((await fetch(`${dp.adminUrl}/readyz`)).status).toBe(503);
      expect((await get(`${dp.url}/`)).status).toBe(503);
    } finally {
      expect(await dp.stop()).toBe(0);
    }
  });
});
