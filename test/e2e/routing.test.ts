// Richer routing end to end (issue 12): real etcd, a control plane, a data-plane process and real
// backends. Each matcher — headers (exact, prefix with ignoreCase, regex, present, absent),
// methods, query — picks its route over the plain one on the same host and prefix; header edits,
// a path-prefix rewrite and a redirect do what the config says.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
let stable: Backend;
let canary: Backend;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  [stable, canary] = await Promise.all([Backend.start('stable'), Backend.start('canary')]);
  const on = (match: Record<string, unknown>, pool = 'canary') => ({ match: { pathPrefix: '/app', ...match }, pools: [{ pool }] });
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: { stable: { backends: [{ id: 's', address: stable.address }] }, canary: { backends: [{ id: 'c', address: canary.address }] } },
    routes: {
      app: {
        match: { pathPrefix: '/app' },
        pools: [{ pool: 'stable' }],
        requestHeaders: { remove: ['x-debug'], set: { 'x-env': 'prod' }, add: { 'x-via': 'lb' } },
        responseHeaders: { set: { 'cache-control': 'no-store' }, remove: ['x-backend'] },
      },
      'by-header': on({ headers: [{ name: 'x-canary', exact: 'on' }] }),
      'by-agent': on({ headers: [{ name: 'user-agent', prefix: 'beta-tester/', ignoreCase: true }] }),
      'by-cookie': on({ headers: [{ name: 'cookie', regex: '.*\\bgroup=b\\b.*' }] }),
      'by-present': on({
        headers: [
          { name: 'x-preview', present: true },
          { name: 'authorization', present: false },
        ],
      }),
      'by-method': on({ methods: ['DELETE'] }),
      'by-query': on({ query: [{ name: 'variant', exact: 'new' }] }),
      rewritten: { match: { pathPrefix: '/old-api' }, pools: [{ pool: 'stable' }], rewrite: { pathPrefix: '/echo' } },
      moved: { match: { pathPrefix: '/moved' }, redirect: { status: 308, scheme: 'https', host: 'new.example.com', pathPrefix: '/now' } },
    },
  });
  expect(res.status).toBe(200);
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-routing' });
  await waitFor(async () => (await dp.appliedVersion()) === res.body.version, { message: 'the config applied' });
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop();
  await Promise.allSettled([stable?.close(), canary?.close()]);
  await etcd?.stop();
});

async function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await request(`${dp.url}${path}`, { method: method as 'GET', headers });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

describe('routing on more than host and path', () => {
  it.each([
    ['no condition met', {}, 'GET', '/app/x', 'stable'],
    ['an exact header', { 'x-canary': 'on' }, 'GET', '/app/x', 'canary'],
    ['an exact header with another value', { 'x-canary': 'On' }, 'GET', '/app/x', 'stable'],
    ['a header prefix, ignoring case', { 'user-agent': 'Beta-Tester/2.1' }, 'GET', '/app/x', 'canary'],
    ['a regex on the cookie', { cookie: 'a=1; group=b; z=9' }, 'GET', '/app/x', 'canary'],
    ['a regex that does not match', { cookie: 'group=bb' }, 'GET', '/app/x', 'stable'],
    ['a header present and another absent', { 'x-preview': '1' }, 'GET', '/app/x', 'canary'],
    ['the absent header present', { 'x-preview': '1', authorization: 'Bearer t' }, 'GET', '/app/x', 'stable'],
    ['a method', {}, 'DELETE', '/app/x', 'canary'],
    ['a query parameter', {}, 'GET', '/app/x?variant=new', 'canary'],
    ['a query parameter with another value', {}, 'GET', '/app/x?variant=old', 'stable'],
  ])('%s', async (_what, headers, method, path, backend) => {
    const before = { stable: stable.hits, canary: canary.hits };
    const res = await get(path, headers as Record<string, string>, method);
    expect(res.status).toBe(200);
    expect({ stable: stable.hits - before.stable, canary: canary.hits - before.canary }).toEqual(
      backend === 'stable' ? { stable: 1, canary: 0 } : { stable: 0, canary: 1 },
    );
  });

  it('edits the request and response headers as the route says', async () => {
    const res = await get('/app/echo-headers', { 'x-debug': '1', 'x-env': 'dev' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-backend']).toBeUndefined();
    const seen = stable.seen.at(-1)!;
    expect(seen.headers['x-debug']).toBeUndefined();
    expect(seen.headers['x-env']).toBe('prod');
    expect(seen.headers['x-via']).toBe('lb');
  });

  it('rewrites the matched path prefix upstream', async () => {
    const res = await get('/old-api/things?id=7');
    expect(res.status).toBe(200);
    expect(stable.seen.at(-1)!.url).toBe('/echo/things?id=7');
  });

  it('answers a redirecting route itself, with the Location built from the request', async () => {
    const before = stable.hits + canary.hits;
    const res = await get('/moved/a/b?q=1', { host: 'old.example.com' });
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('https://new.example.com/now/a/b?q=1');
    expect(stable.hits + canary.hits).toBe(before);
  });
});
