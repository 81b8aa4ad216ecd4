// lbctl as operators and CI run it: a real process against a real control plane, etcd and data
// plane. Every command, its output formats, and the exit codes scripts rely on — a failed apply
// whose If-Match was lost (5) included.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_ACTOR, TEST_ADMIN_TOKEN } from '../support/auth.js';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api, distribution } from '../support/http.js';
import { lbctl } from '../support/lbctl.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'lbctl-e2e-'));
let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
let backends: Backend[];
let env: Record<string, string>;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** lb.yaml as it would sit in git: two backends in pool web, one route. */
function lbYaml(weight2 = 1): string {
  return `# the config, kept in git
pools:
  web:
    algorithm: weighted_round_robin
    backends:
      - id: b1
        address: ${backends[0]!.address}
      - id: b2
        address: ${backends[1]!.address}
        weight: ${weight2}
routes:
  site:
    match: { pathPrefix: / }
    pools: [{ pool: web }]
`;
}

async function current(): Promise<{ version: number; config: any }> {
  return (await api('GET', `${cp.url}/v1/config`)).body;
}

beforeAll(async () => {
  etcd = await EtcdServer.start();
  backends = [await Backend.start('b1'), await Backend.start('b2')];
  cp = await ControlPlane.start({ etcd: etcd.url });
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-lbctl' });
  env = { LB_URL: cp.url, LB_TOKEN: TEST_ADMIN_TOKEN };
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop().catch(() => undefined);
  await Promise.all((backends ?? []).map((b) => b.close()));
  await etcd?.stop();
});

describe('lbctl apply and diff (GitOps)', () => {
  it('diff shows the drift and exits 1; --dry-run shows it and applies nothing', async () => {
    const path = file('lb.yaml', lbYaml());
    const drift = await lbctl(['diff', '-f', path], env);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/^\+ pools\.web: /m);
    expect(drift.stdout).toMatch(/^\+ routes\.site: /m);
    expect(drift.stderr).toMatch(/2 difference\(s\) between .*lb\.yaml and version 0/);
    const dry = await lbctl(['apply', '-f', path, '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^\+ pools\.web: /m);
    expect(dry.stderr).toMatch(/dry run: nothing applied/);
    expect((await current()).version).toBe(0);
  });

  it('without a terminal and without --yes nothing is applied (exit 7)', async () => {
    const res = await lbctl(['apply', '-f', file('lb.yaml', lbYaml())], env);
    expect(res.code).toBe(7);
    expect(res.stderr).toMatch(/not applied: stdin is not a terminal.*pass --yes/);
    expect((await current()).version).toBe(0);
  });

  it('apply --yes commits one version with its message and actor; applying again changes nothing; diff is then clean', async () => {
    const path = file('lb.yaml', lbYaml());
    const res = await lbctl(['apply', '-f', path, '--yes', '-m', 'from git: add web'], env);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/applied as version 1/);
    const v1 = (await api('GET', `${cp.url}/v1/versions/1`)).body;
    expect(v1).toMatchObject({ actor: TEST_ADMIN_ACTOR, message: 'from git: add web' });
    expect(v1.config.pools.web.backends.map((b: { id: string }) => b.id)).toEqual(['b1', 'b2']);
    const again = await lbctl(['apply', '-f', path, '--yes'], env);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/no changes: version 1 already matches/);
    expect((await lbctl(['diff', '-f', path], env)).code).toBe(0);
    expect((await current()).version).toBe(1);
  });

  it('reads JSON, and what get config -o json printed, as well as YAML', async () => {
    const printed = await lbctl(['get', 'config', '-o', 'json'], env);
    expect(printed.code).toBe(0);
    const path = file('printed.json', printed.stdout);
    expect((await lbctl(['diff', '-f', path], env)).code).toBe(0);
  });

  it('a lost If-Match fails the apply with exit 5 and applies nothing', async () => {
    const reviewed = (await current()).version;
    // Someone else changes the config after the diff was reviewed at `reviewed`.
    expect((await api('PATCH', `${cp.url}/v1/pools/web/backends/b1`, { weight: 3 })).status).toBe(200);
    const res = await lbctl(['apply', '-f', file('lb.yaml', lbYaml(5)), '--yes', '--if-match', String(reviewed)], env);
    expect(res.code).toBe(5);
    expect(res.stderr).toMatch(new RegExp(`nothing applied: the config changed since version ${reviewed}`));
    const now = await current();
    expect(now.version).toBe(reviewed + 1);
    expect(now.config.pools.web.backends[1].weight).toBe(1);
    expect(now.config.pools.web.backends[0].weight).toBe(3);
  });

  it('a file the control plane refuses exits 3 with the field at fault; a file that does not parse exits 2', async () => {
    const bad = await lbctl(['apply', '-f', file('bad.yaml', 'pools:\n  web:\n    backends:\n      - id: b1\n        address: 999.1.1.1:80\n'), '--yes'], env);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/400 LB_CP_VALIDATION/);
    expect(bad.stderr).toMatch(/pools\.web\.backends\[0\]\.address: "999\.1\.1\.1" is not an IPv4 address/);
    const broken = await lbctl(['apply', '-f', file('broken.yaml', 'pools: [\n'), '--yes'], env);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/neither YAML nor JSON/);
    expect((await lbctl(['apply', '-f', join(dir, 'missing.yaml')], env)).code).toBe(2);
  });
});

describe('lbctl get', () => {
  it.each([
    ['config', /^version \d+\n\nPOOL +ALGORITHM +BACKENDS +ACTIVE +HEALTH CHECK\nweb +weighted_round_robin +2 +2 +-/m],
    ['pools', /^POOL +ALGORITHM +BACKENDS +ACTIVE +HEALTH CHECK\nweb +weighted_round_robin +2 +2/m],
    ['routes', /^ROUTE +HOST +PATH PREFIX +POOLS +LISTENERS\nsite +\* +\/ +web:1 +\*/m],
    ['nodes', /^NODE +STATUS +VERSION +ADDRESS +REPLICA +SINCE +LAST NACK\ndp-lbctl +connected +\d+/m],
    ['health', /^POOL +BACKEND +ADDRESS +STATE +STATUS +SINCE +LAST PROBE\nweb +b1 +127\.0\.0\.1:\d+ +active +unknown/m],
    ['versions', /^VERSION +CREATED +ACTOR +SOURCE +MESSAGE\n2 .* bootstrap-admin +127\.0\.0\.1 +PATCH \/v1\/pools\/web\/backends\/b1/m],
  ])('%s as a table', async (resource, shape) => {
    await waitFor(async () => (await dp.appliedVersion()) === (await current()).version, { message: 'the node to run the current version' });
    const res = await lbctl(['get', resource], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(shape);
  });

  it('one pool with its backends, one version, and -o json / -o yaml for scripts', async () => {
    const pool = await lbctl(['get', 'pools', 'web'], env);
    expect(pool.stdout).toMatch(/^BACKEND +ADDRESS +WEIGHT +STATE\nb1 +127\.0\.0\.1:\d+ +3 +active\nb2 /m);
    const version = await lbctl(['get', 'versions', '1', '-o', 'json'], env);
    expect(JSON.parse(version.stdout)).toMatchObject({ version: 1, message: 'from git: add web', config: { pools: { web: {} } } });
    const nodes = JSON.parse((await lbctl(['get', 'nodes', '-o', 'json'], env)).stdout);
    expect(nodes.nodes).toEqual([expect.objectContaining({ id: 'dp-lbctl', status: 'connected' })]);
    const yaml = await lbctl(['-o', 'yaml', 'get', 'routes', 'site'], env);
    expect(yaml.stdout).toMatch(/^name: site\nroute:\n {2}match:\n {4}pathPrefix: \/\n/m);
    expect((await lbctl(['get', 'pools', 'nope'], env)).code).toBe(3);
    expect((await lbctl(['get', 'everything'], env)).code).toBe(2);
  });
});

describe('lbctl drain, rollback and watch', () => {
  it('drain POOL/BACKEND stops new requests to it on the data plane', async () => {
    const res = await lbctl(['drain', 'web/b2'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/web\/b2 is draining as of version (\d+)/);
    const version = Number(/as of version (\d+)/.exec(res.stdout)![1]);
    expect((await api('GET', `${cp.url}/v1/pools/web/backends/b2`)).body.backend.state).toBe('draining');
    // watch nodes --until-converged returns once the node runs it.
    const watched = await lbctl(['watch', 'nodes', '--until-converged', '--timeout', '20', '--interval', '100'], env);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(new RegExp(`version ${version}: 1/1 connected node\\(s\\) run it`));
    expect(watched.stderr).toMatch(new RegExp(`converged: every connected node runs version ${version}`));
    expect(await dp.appliedVersion()).toBe(version);
    expect(await distribution(`${dp.url}/`, 8)).toEqual({ b1: 8 });
    expect((await lbctl(['drain', 'web-b2'], env)).code).toBe(2);
  });

  it('watch --until-converged exits 8 when the version is not reached in time, and prints JSON lines with -o json', async () => {
    const res = await lbctl(['watch', 'nodes', '--until-converged', '--target', '999', '--timeout', '1', '--interval', '200', '-o', 'json'], env);
    expect(res.code).toBe(8);
    expect(res.stderr).toMatch(/not converged after 1 s: dp-lbctl runs \d+/);
    const first = JSON.parse(res.stdout.split('\n')[0]!);
    expect(first).toMatchObject({ version: 999, converged: false, nodes: [expect.objectContaining({ id: 'dp-lbctl' })] });
  });

  it('rollback N shows what it changes and, with --yes, makes a version equal to N', async () => {
    const before = await current();
    const dry = await lbctl(['rollback', '1', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^~ pools\.web\.backends\.b1\.weight: 3 -> 1$/m);
    expect((await current()).version).toBe(before.version);
    const res = await lbctl(['rollback', '1', '--yes'], env);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`rolled back to version 1 as version ${before.version + 1}`));
    const after = await api('GET', `${cp.url}/v1/versions/${before.version + 1}`);
    expect(after.body).toMatchObject({ rollbackOf: 1, message: 'rollback to 1' });
    expect(after.body.config).toEqual((await api('GET', `${cp.url}/v1/versions/1`)).body.config);
    expect((await lbctl(['rollback', 'one', '--yes'], env)).code).toBe(2);
    expect((await lbctl(['rollback', '999', '--yes'], env)).code).toBe(3);
  });
});

describe('lbctl settings and failures', () => {
  it('reads the URL and token from a config file', async () => {
    const token = file('token', `${TEST_ADMIN_TOKEN}\n`);
    const config = file('lbctl.yaml', `url: ${cp.url}\ntokenFile: ${token}\n`);
    const res = await lbctl(['--config', config, 'get', 'pools'], {});
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^web /m);
  });

  it('no token or a wrong one exits 4, a role too low exits 4 too', async () => {
    const none = await lbctl(['get', 'config'], { LB_URL: cp.url });
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/401 LB_CP_UNAUTHENTICATED.*set LB_TOKEN/);
    expect((await lbctl(['get', 'config'], { LB_URL: cp.url, LB_TOKEN: 'wrong-token' })).code).toBe(4);
    const viewer = (await api('POST', `${cp.url}/v1/tokens`, { name: 'lbctl-viewer', role: 'viewer' })).body.secret;
    const denied = await lbctl(['drain', 'web/b1'], { LB_URL: cp.url, LB_TOKEN: viewer });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/403 LB_CP_FORBIDDEN/);
    expect((await lbctl(['get', 'nodes'], { LB_URL: cp.url, LB_TOKEN: viewer })).code).toBe(0);
  });

  it('an unreachable control plane exits 6; a bad command or flag exits 2 with usage', async () => {
    const down = await lbctl(['get', 'config'], { LB_URL: 'http://127.0.0.1:1', LB_TOKEN: 'x' });
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/cannot reach the control plane at http:\/\/127\.0\.0\.1:1/);
    const unknown = await lbctl(['frobnicate'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    expect((await lbctl(['get', 'config', '-o', 'xml'], env)).code).toBe(2);
    expect((await lbctl(['apply'], env)).code).toBe(2);
    const help = await lbctl(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {2}done/);
  });
});
