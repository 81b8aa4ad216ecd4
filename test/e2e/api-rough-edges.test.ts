// The rough edges of issue 14, each reproduced against real processes and shown fixed: unknown
// query parameters, bad addresses, non-JSON bodies, wrong methods, a pool's backends, PATCH of a
// pool, PUT /v1/config taking what GET answers, a probe timeout above its interval, a bad log
// level, disconnected nodes, version retention, --bootstrap-config, and the OpenAPI document.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN, bearer } from '../support/auth.js';
import { Backend } from '../support/backends.js';
import { Child } from '../support/child.js';
import { EtcdServer } from '../support/etcd.js';
import { api, get } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

const CP_MAIN = fileURLToPath(new URL('../../packages/control-plane/dist/main.js', import.meta.url));
const DP_MAIN = fileURLToPath(new URL('../../packages/data-plane/dist/main.js', import.meta.url));
const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lb-edges-'));

let etcd: EtcdServer;
let cp: ControlPlane;
let backend: Backend;

const webPool = () => ({ algorithm: 'round_robin', backends: [{ id: 'b1', address: backend.address }] });

async function version(of: ControlPlane = cp): Promise<number> {
  return (await api('GET', `${of.url}/v1/config`)).body.version as number;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  backend = await Backend.start('b1');
  cp = await ControlPlane.start({ etcd: etcd.url });
  expect((await api('PUT', `${cp.url}/v1/config`, { pools: { web: webPool() }, routes: { site: { pools: [{ pool: 'web' }] } } })).status).toBe(200);
});

afterAll(async () => {
  await cp?.stop().catch(() => undefined);
  await backend?.close();
  await etcd?.stop();
});

describe('requests that used to be accepted silently', () => {
  it('?dryrun=true and ?dry_run=true are 400 and commit nothing', async () => {
    const before = await version();
    for (const query of ['dryrun=true', 'dry_run=true']) {
      const res = await api('PUT', `${cp.url}/v1/pools/typo?${query}`, { backends: [] });
      expect(res.status, query).toBe(400);
      expect(res.body.errors).toEqual([{ field: `query.${query.split('=')[0]}`, message: 'unknown query parameter: it takes dryRun, stage' }]);
    }
    expect(await version()).toBe(before);
    expect((await api('GET', `${cp.url}/v1/pools/typo`)).status).toBe(404);
  });

  it('addresses are validated: IPv4 octets, no scheme, each with a message that says what is wrong', async () => {
    const res = await api('PUT', `${cp.url}/v1/pools/bad`, {
      backends: [
        { id: 'a', address: '999.1.1.1:80' },
        { id: 'b', address: 'http://10.0.0.1:80' },
        { id: 'c', address: '10.0.0.1:80/api' },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      { field: 'backends[0].address', message: '"999.1.1.1" is not an IPv4 address: it needs 4 numbers from 0 to 255 (no leading zeros), e.g. 10.0.0.1' },
      { field: 'backends[1].address', message: 'must be host:port without a scheme: drop "http://"' },
      { field: 'backends[2].address', message: 'must be host:port without a path' },
    ]);
  });

  it('a body sent as text/plain is 415 and commits nothing', async () => {
    const before = await version();
    const res = await fetch(`${cp.url}/v1/pools/plain`, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain', ...bearer(TEST_ADMIN_TOKEN) },
      body: JSON.stringify({ backends: [] }),
    });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('LB_CP_UNSUPPORTED_MEDIA_TYPE');
    expect(await version()).toBe(before);
  });

  it('a wrong method is 405 with Allow, an unknown path still 404', async () => {
    const res = await api('POST', `${cp.url}/v1/pools/web`, { backends: [] });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('DELETE, GET, HEAD, PATCH, PUT');
    expect(res.body.code).toBe('LB_CP_METHOD_NOT_ALLOWED');
    expect((await api('DELETE', `${cp.url}/v1/config`)).headers.allow).toBe('GET, HEAD, PUT');
    expect((await api('GET', `${cp.url}/v1/pool`)).status).toBe(404);
  });

  it('healthCheck.timeoutMs above intervalMs is 400, not stored and clamped', async () => {
    const before = await version();
    const res = await api('PATCH', `${cp.url}/v1/pools/web`, { healthCheck: { intervalMs: 1000, timeoutMs: 2500 } });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'healthCheck.timeoutMs', message: 'must not exceed intervalMs (1000)' }]);
    expect(await version()).toBe(before);
  });
});

describe('what was missing', () => {
  it("GET and PUT of a pool's backend list, GET of one backend", async () => {
    const list = await api('GET', `${cp.url}/v1/pools/web/backends`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ version: await version(), pool: 'web', backends: [{ id: 'b1', address: backend.address, weight: 1, state: 'active' }] });
    const one = await api('GET', `${cp.url}/v1/pools/web/backends/b1`);
    expect(one.body.backend).toEqual({ id: 'b1', address: backend.address, weight: 1, state: 'active' });
    // The list as read, one more backend, written back in one version.
    const replaced = await api('PUT', `${cp.url}/v1/pools/web/backends`, {
      ...list.body,
      backends: [...list.body.backends, { id: 'b2', address: '127.0.0.1:9', state: 'disabled' }],
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body.version).toBe(list.body.version + 1);
    expect((await api('GET', `${cp.url}/v1/pools/web/backends/b2`)).body.backend).toMatchObject({ state: 'disabled' });
  });

  it('PATCH of a pool changes what it names and keeps the rest', async () => {
    const res = await api('PATCH', `${cp.url}/v1/pools/web`, { algorithm: 'least_connections', slowStartMs: 1000 });
    expect(res.status).toBe(200);
    expect(res.body.pool).toMatchObject({ algorithm: 'least_connections', slowStartMs: 1000, backends: [{ id: 'b1' }, { id: 'b2' }] });
    expect(res.body.changes.map((c: { path: string }) => c.path).sort()).toEqual(['pools.web.algorithm', 'pools.web.slowStartMs']);
  });

  it('PUT /v1/config accepts what GET /v1/config answers; its version guards against a change in between', async () => {
    const read = await api('GET', `${cp.url}/v1/config`);
    read.body.config.pools.web.algorithm = 'random';
    const put = await api('PUT', `${cp.url}/v1/config`, read.body);
    expect(put.status).toBe(200);
    expect(put.body.changes).toEqual([expect.objectContaining({ path: 'pools.web.algorithm', after: 'random' })]);
    const again = await api('PUT', `${cp.url}/v1/config`, read.body);
    expect(again.status).toBe(412);
    expect(again.body.currentVersion).toBe(put.body.version);
  });
});

describe('a bad log level', () => {
  it.each([
    ['lb-control-plane', [CP_MAIN, '--etcd', 'http://127.0.0.1:1']],
    ['lb-data-plane', [DP_MAIN, '--control-plane', '127.0.0.1:1', '--workers', '1']],
  ])('%s prints usage and exits 2', async (command, args) => {
    const child = new Child(`${command} verbose`, process.execPath, args, { LB_LOG_LEVEL: 'verbose' });
    expect(await child.exited).toBe(2);
    expect(child.logs()).toMatch(/LB_LOG_LEVEL "verbose" is not a log level: use one of fatal, error, warn, info, debug, trace, silent/);
    expect(child.logs()).toMatch(new RegExp(`usage: ${command}`));
    expect(child.logs()).not.toMatch(/\n\s+at /);
  });
});

describe('disconnected data planes', () => {
  it('stay in GET /v1/nodes as disconnected, with last-seen time and last acked version, while they serve; until removed', async () => {
    const a = await ControlPlane.start({ etcd: etcd.url, prefix: '/nodes', extraArgs: ['--replica-id', 'cp-a'] });
    const b = await ControlPlane.start({ etcd: etcd.url, prefix: '/nodes', extraArgs: ['--replica-id', 'cp-b'] });
    // The node knows only replica A.
    const dp = await DataPlane.start({ controlPlanes: [a.grpcAddress], nodeId: 'dp-lonely' });
    try {
      const written = await api('PUT', `${b.url}/v1/config`, { pools: { web: webPool() }, routes: { site: { pools: [{ pool: 'web' }] } } });
      const v = written.body.version as number;
      await waitFor(async () => (await api('GET', `${b.url}/v1/nodes`)).body.nodes.find((n: { configVersion: number }) => n.configVersion === v), {
        message: 'the node to ack through A',
      });
      const before = new Date().toISOString();
      expect(await a.stop()).toBe(0);
      const node = await waitFor(async () => (await api('GET', `${b.url}/v1/nodes`)).body.nodes.find((n: { status: string }) => n.status === 'disconnected'), {
        message: 'B to list the node as disconnected',
      });
      expect(node).toMatchObject({ id: 'dp-lonely', status: 'disconnected', configVersion: v, replica: 'cp-a' });
      expect(node.lastSeenAt >= before).toBe(true);
      // It still serves from what it has.
      expect((await get(`${dp.url}/`)).status).toBe(200);
      // An operator removes it; a connected node cannot be removed.
      expect((await api('DELETE', `${b.url}/v1/nodes/dp-lonely`)).body).toEqual({ id: 'dp-lonely', forgotten: true });
      expect((await api('GET', `${b.url}/v1/nodes`)).body.nodes).toEqual([]);
      await a.restart();
      await waitFor(async () => (await api('GET', `${b.url}/v1/nodes`)).body.nodes.some((n: { status: string }) => n.status === 'connected'), {
        timeoutMs: 20_000,
        message: 'the node to reconnect to A',
      });
      expect((await api('DELETE', `${b.url}/v1/nodes/dp-lonely`)).status).toBe(409);
    } finally {
      await dp.stop();
      await a.stop().catch(() => undefined);
      await b.stop();
    }
  });

  it('are forgotten once --node-retention-seconds passes', async () => {
    const c = await ControlPlane.start({ etcd: etcd.url, prefix: '/retain', extraArgs: ['--node-retention-seconds', '1'] });
    const dp = await DataPlane.start({ controlPlanes: [c.grpcAddress], nodeId: 'dp-brief' });
    try {
      await waitFor(async () => (await api('GET', `${c.url}/v1/nodes`)).body.nodes.length === 1, { message: 'the node to show' });
      await dp.stop();
      await waitFor(async () => (await api('GET', `${c.url}/v1/nodes`)).body.nodes[0]?.status === 'disconnected', { message: 'the node to disconnect' });
      // Retention runs after every new version (and every minute): write until it has forgotten the node.
      let weight = 1;
      await waitFor(
        async () => {
          await api('PUT', `${c.url}/v1/pools/tick`, { backends: [{ id: 'x', address: '127.0.0.1:9', weight: ++weight }] });
          return (await api('GET', `${c.url}/v1/nodes`)).body.nodes.length === 0;
        },
        { timeoutMs: 15_000, intervalMs: 300, message: 'retention to forget the node' },
      );
    } finally {
      await dp.stop();
      await c.stop();
    }
  });
});

describe('version retention (--keep-versions)', () => {
  it('keeps the newest versions and any a node still runs, never the current one; a pruned version is 410', async () => {
    const c = await ControlPlane.start({ etcd: etcd.url, prefix: '/keep', extraArgs: ['--keep-versions', '3'] });
    const dp = await DataPlane.start({ controlPlanes: [c.grpcAddress], nodeId: 'dp-old', waitReady: false });
    try {
      const put = async (n: number) =>
        (await api('PUT', `${c.url}/v1/pools/p`, { backends: [{ id: 'x', address: '127.0.0.1:9', weight: n }] })).body.version as number;
      await put(1);
      const held = await put(2);
      await waitFor(async () => (await dp.appliedVersion()) === held, { message: 'the node to apply version 2' });
      await waitFor(async () => (await api('GET', `${c.url}/v1/nodes`)).body.nodes[0]?.configVersion === held, { message: 'the node to ack version 2' });
      // The node goes away still running version 2 (from its cache, as far as anyone knows).
      await dp.stop();
      await waitFor(async () => (await api('GET', `${c.url}/v1/nodes`)).body.nodes[0]?.status === 'disconnected', { message: 'the node to disconnect' });
      for (let n = 3; n <= 7; n++) await put(n);
      const listed = async () => (await api('GET', `${c.url}/v1/versions`)).body.versions.map((v: { version: number }) => v.version);
      await waitFor(async () => JSON.stringify(await listed()) === JSON.stringify([7, 6, 5, 2]), { message: 'history pruned to 7, 6, 5 and 2' });
      const gone = await api('GET', `${c.url}/v1/versions/1`);
      expect(gone.status).toBe(410);
      expect(gone.body.code).toBe('LB_CP_VERSION_PRUNED');
      expect((await api('GET', `${c.url}/v1/versions/2`)).status).toBe(200);
      // Once the node is removed, nothing holds version 2 any more.
      await api('DELETE', `${c.url}/v1/nodes/dp-old`);
      await waitFor(async () => JSON.stringify(await listed()) === JSON.stringify([7, 6, 5]), { message: 'version 2 pruned too' });
      expect((await api('GET', `${c.url}/v1/config`)).body.version).toBe(7);
    } finally {
      await dp.stop();
      await c.stop();
    }
  });
});

describe('--bootstrap-config', () => {
  it('seeds an empty etcd from a YAML file as version 1, and never again', async () => {
    const file = join(dir, 'lb.yaml');
    writeFileSync(
      file,
      `pools:\n  web:\n    backends:\n      - id: b1\n        address: ${backend.address}\nroutes:\n  site:\n    pools:\n      - pool: web\n`,
    );
    const c = await ControlPlane.start({ etcd: etcd.url, prefix: '/seeded', extraArgs: ['--bootstrap-config', file] });
    try {
      const first = await waitFor(async () => {
        const res = await api('GET', `${c.url}/v1/versions/1`);
        return res.status === 200 ? res.body : undefined;
      });
      expect(first).toMatchObject({ actor: 'bootstrap-config', message: `bootstrap config from ${file}` });
      expect(first.config.pools.web.backends).toEqual([{ id: 'b1', address: backend.address, weight: 1, state: 'active' }]);
      await api('PATCH', `${c.url}/v1/pools/web/backends/b1`, { weight: 5 });
      await c.stop();
      await c.restart();
      const now = await api('GET', `${c.url}/v1/config`);
      expect(now.body.version).toBe(2);
      expect(now.body.config.pools.web.backends[0].weight).toBe(5);
    } finally {
      await c.stop();
    }
  });

  it('a file that is not a valid config stops the start with the field at fault and exit 2', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'pools:\n  web:\n    backends:\n      - id: b1\n        address: http://10.0.0.1:80\n');
    const child = new Child('bad bootstrap', process.execPath, [CP_MAIN, '--etcd', etcd.url, '--bootstrap-config', file], { LB_LOG_LEVEL: 'warn' });
    expect(await child.exited).toBe(2);
    expect(child.logs()).toMatch(/pools\.web\.backends\[0\]\.address: must be host:port without a scheme/);
  });
});

describe('the OpenAPI document', () => {
  it('is served at /openapi.json and /docs without a token, and covers every route of the README, and the README every route', async () => {
    const res = await fetch(`${cp.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    expect((await fetch(`${cp.url}/docs/`)).status).toBe(200);
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    // The README's REST table: `| GET / PUT | /v1/pools/{pool} | … |`.
    const section = readFileSync(README, 'utf8').split('## REST API')[1]!.split('\n## ')[0]!;
    const inReadme = new Set<string>();
    for (const match of section.matchAll(/^\| ([A-Z /]+) \| (`[^|]+`) \|/gm)) {
      for (const [, path] of match[2]!.matchAll(/`([^`]+)`/g))
        for (const method of match[1]!.split(' / ')) inReadme.add(`${method.trim()} ${path!.split('?')[0]}`);
    }
    expect(inReadme.size).toBeGreaterThan(20);
    expect([...inReadme].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !inReadme.has(r))).toEqual([]);
  });
});
