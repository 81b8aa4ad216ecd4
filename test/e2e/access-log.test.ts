// The access log keeps its promises (issue 15, point 5), against data-plane processes: every line
// is in the file within a second while the node runs; none is lost on a SIGTERM; a worker killed
// under load leaves every line already written intact and no torn line; SIGHUP starts a new file
// after logrotate moved the old one; a path that cannot be written stops the start with exit 2.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

const DP_MAIN = fileURLToPath(new URL('../../packages/data-plane/dist/main.js', import.meta.url));

let etcd: EtcdServer;
let cp: ControlPlane;
let backend: Backend;
const dir = mkdtempSync(join(tmpdir(), 'lb-access-'));

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  backend = await Backend.start('b');
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: { web: { backends: [{ id: 'b', address: backend.address }] } },
    routes: { all: { match: {}, pools: [{ pool: 'web' }] } },
  });
  expect(res.status).toBe(200);
});

afterAll(async () => {
  await cp?.stop();
  await backend?.close();
  await etcd?.stop();
});

/** Parsed lines of `file` (every one must be whole JSON), or [] when it does not exist. */
function lines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function startNode(name: string, log: string, workers = 1): Promise<DataPlane> {
  return DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: name, workers, extraArgs: ['--access-log', log] });
}

async function send(dp: DataPlane, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${dp.url}/${tag}/${i}`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  }
}

const urls = (file: string, tag: string) => lines(file).filter((l) => String(l.url).startsWith(`/${tag}/`)).length;

describe('the access log', () => {
  it('has every line in the file within a second, while the node keeps running', async () => {
    const log = join(dir, 'live.log');
    const dp = await startNode('dp-live', log);
    try {
      await send(dp, 25, 'live');
      const sent = Date.now();
      await waitFor(() => urls(log, 'live') === 25, { message: 'all 25 lines in the file', timeoutMs: 3_000, intervalMs: 50 });
      // Batched at most a second (and one more write on a busy machine).
      expect(Date.now() - sent).toBeLessThan(2_000);
    } finally {
      await dp.stop();
    }
  });

  it('loses no line on SIGTERM, and SIGHUP starts a new file after logrotate moved the old one', async () => {
    const log = join(dir, 'rotate.log');
    const dp = await startNode('dp-rotate', log, 2);
    await send(dp, 20, 'before');
    await waitFor(() => urls(log, 'before') === 20, { message: 'the first lines', timeoutMs: 3_000 });
    renameSync(log, `${log}.1`);
    dp.process.process.kill('SIGHUP');
    // Reopened: new lines go to a new file at the old path, none to the moved one.
    await waitFor(
      async () => {
        await send(dp, 1, 'probe');
        return existsSync(log) && urls(log, 'probe') > 0;
      },
      { message: 'a new file at the old path', timeoutMs: 5_000 },
    );
    await send(dp, 30, 'after');
    expect(await dp.stop()).toBe(0);
    expect(urls(`${log}.1`, 'before')).toBe(20);
    expect(urls(`${log}.1`, 'after')).toBe(0);
    expect(urls(log, 'after')).toBe(30);
  });

  it('keeps every line already written, and tears none, when a worker is killed under load', async () => {
    const log = join(dir, 'kill.log');
    const dp = await startNode('dp-kill', log, 2);
    try {
      // Bounded in time, and no request may wait long: a client left hanging fails the test, not its timeout.
      const agent = new Agent({ connections: 8, headersTimeout: 5_000, bodyTimeout: 5_000 });
      const until = Date.now() + 60_000;
      let stop = false;
      let ok = 0;
      let waiting = 0;
      const loops = Array.from({ length: 8 }, async () => {
        while (!stop && Date.now() < until) {
          try {
            const res = await request(`${dp.url}/kill/x`, { dispatcher: agent });
            await res.body.dump();
            if (res.statusCode === 200) ok++;
          } catch (err) {
            // The killed worker's connections break; none may be left unanswered.
            if (/TIMEOUT/.test((err as { code?: string }).code ?? '')) waiting++;
          }
        }
      });
      await waitFor(() => urls(log, 'kill') > 200, { message: 'lines from the load', timeoutMs: 10_000 });
      const written = urls(log, 'kill');
      const workers = spawnSync('pgrep', ['-f', '--', '--node-id dp-kill'], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .map(Number)
        .filter((pid) => pid !== dp.process.process.pid);
      expect(workers.length).toBe(2);
      process.kill(workers[0]!, 'SIGKILL');
      await waitFor(async () => (await fetch(`${dp.adminUrl}/metrics`).then((r) => r.text())).includes('lb_dp_worker_restarts_total 1'), {
        message: 'the worker replaced',
        timeoutMs: 10_000,
      });
      const after = ok;
      await waitFor(() => ok > after + 100, { message: 'load after the kill' });
      stop = true;
      await Promise.all(loops);
      await agent.close();
      // Every line is whole JSON (lines() parses them all), and none written before the kill went.
      expect(urls(log, 'kill')).toBeGreaterThanOrEqual(written);
      expect(waiting).toBe(0);
    } finally {
      const code = await dp.stop();
      expect(code, `the data plane's last output:\n${dp.process.logs().slice(-3000)}`).toBe(0);
    }
  });

  it('refuses to start with exit 2 when the file cannot be written', () => {
    // A directory without write permission would not stop root; a path under a regular file stops everyone.
    const blocker = join(dir, 'plain-file');
    spawnSync('touch', [blocker]);
    const r = spawnSync(process.execPath, [DP_MAIN, '--control-plane', cp.grpcAddress, '--access-log', join(blocker, 'access.log')], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--access-log .*cannot be written/);
  });
});
