// The request path end to end: REST → etcd → gRPC push → data plane → real backends.
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, distribution, get } from '../support/http.js';
import { DataPlane } from '../support/planes.js';
import { Stack } from '../support/stack.js';
import { waitFor } from '../support/wait.js';

let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start({ dataPlanes: 2, backends: 3 });
});

afterAll(async () => {
  await stack?.stop();
});

function pool(algorithm: string, backends: { id: string; address: string; weight?: number; state?: string }[]) {
  return { algorithm, backends };
}

describe('routing and balancing through both data planes', () => {
  it('routes by host and longest path prefix to weighted pools', async () => {
    const [b1, b2, b3] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0], (typeof stack.backends)[0]];
    await stack.applyConfig({
      pools: {
        web: pool('weighted_round_robin', [
          { id: 'b1', address: b1.address, weight: 3 },
          { id: 'b2', address: b2.address, weight: 1 },
        ]),
        api: pool('round_robin', [{ id: 'b3', address: b3.address }]),
        shop: pool('round_robin', [{ id: 'b2', address: b2.address }]),
      },
      routes: {
        web: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] },
        api: { match: { pathPrefix: '/api' }, pools: [{ pool: 'api', weight: 1 }] },
        'api-v2': { match: { pathPrefix: '/api/v2' }, pools: [{ pool: 'shop', weight: 1 }] },
        shop: { match: { host: 'shop.example.com' }, pools: [{ pool: 'shop', weight: 1 }] },
        wild: { match: { host: '*.wild.test', pathPrefix: '/' }, pools: [{ pool: 'api', weight: 1 }] },
      },
    });
    for (const dp of stack.dps) {
      expect(await distribution(`${dp.url}/index.html`, 40)).toEqual({ b1: 30, b2: 10 });
      expect((await get(`${dp.url}/api/users`)).headers['x-backend']).toBe('b3');
      expect((await get(`${dp.url}/api/v2/users`)).headers['x-backend']).toBe('b2');
      expect((await get(`${dp.url}/api/users`, { host: 'SHOP.example.com:8080' })).headers['x-backend']).toBe('b2');
      expect((await get(`${dp.url}/x`, { host: 'a.wild.test' })).headers['x-backend']).toBe('b3');
    }
  });

  it('interleaves smooth weighted round robin instead of sending bursts', async () => {
    const [b1, b2, b3] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0], (typeof stack.backends)[0]];
    await stack.applyConfig({
      pools: {
        web: pool('weighted_round_robin', [
          { id: 'a', address: b1.address, weight: 5 },
          { id: 'b', address: b2.address, weight: 1 },
          { id: 'c', address: b3.address, weight: 1 },
        ]),
      },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const dp = stack.dps[0]!;
    const order: string[] = [];
    for (let i = 0; i < 14; i++) order.push(String((await get(`${dp.url}/`)).headers['x-backend']));
    // nginx's smooth WRR for 5:1:1 is a a b a c a a, repeating; the cycle may start anywhere.
    const cycle = ['b1', 'b1', 'b2', 'b1', 'b3', 'b1', 'b1'];
    const doubled = [...cycle, ...cycle].join(',');
    expect(doubled).toContain(order.slice(0, 7).join(','));
    expect(order.slice(7)).toEqual(order.slice(0, 7));
  });

  it('splits a route across pools by weight', async () => {
    const [b1, b2] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0]];
    await stack.applyConfig({
      pools: { stable: pool('round_robin', [{ id: 's', address: b1.address }]), canary: pool('round_robin', [{ id: 'c', address: b2.address }]) },
      routes: {
        web: {
          pools: [
            { pool: 'stable', weight: 9 },
            { pool: 'canary', weight: 1 },
          ],
        },
      },
    });
    expect(await distribution(`${stack.dps[1]!.url}/`, 50)).toEqual({ b1: 45, b2: 5 });
  });

  it('answers 404 without a route, 503 without a usable backend, 502 when the backend is down', async () => {
    const [b1] = stack.backends as [(typeof stack.backends)[0]];
    await stack.applyConfig({
      pools: {
        web: pool('round_robin', [{ id: 'b1', address: b1.address }]),
        off: pool('round_robin', [{ id: 'x', address: b1.address, state: 'disabled' }]),
        empty: pool('round_robin', []),
        dead: pool('round_robin', [{ id: 'gone', address: '127.0.0.1:1' }]),
      },
      routes: {
        web: { match: { host: 'web.test' }, pools: [{ pool: 'web' }] },
        off: { match: { pathPrefix: '/off' }, pools: [{ pool: 'off' }] },
        empty: { match: { pathPrefix: '/empty' }, pools: [{ pool: 'empty' }] },
        dead: { match: { pathPrefix: '/dead' }, pools: [{ pool: 'dead' }] },
      },
    });
    const dp = stack.dps[0]!;
    const noRoute = await get(`${dp.url}/nothing-here`);
    expect(noRoute.status).toBe(404);
    expect(noRoute.body.length).toBeGreaterThan(0);
    expect((await get(`${dp.url}/off`)).status).toBe(503);
    expect((await get(`${dp.url}/empty`)).status).toBe(503);
    expect((await get(`${dp.url}/dead`)).status).toBe(502);
    expect((await get(`${dp.url}/`, { host: 'web.test' })).status).toBe(200);
  });

  it('sets X-Forwarded-* and strips hop-by-hop headers both ways', async () => {
    const [b1] = stack.backends as [(typeof stack.backends)[0]];
    await stack.applyConfig({ pools: { web: pool('round_robin', [{ id: 'b1', address: b1.address }]) }, routes: { web: { pools: [{ pool: 'web' }] } } });
    const dp = stack.dps[0]!;
    // node:http, not undici: undici refuses to send hop-by-hop headers at all.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${dp.url}/echo`,
        {
          method: 'POST',
          headers: {
            host: 'app.example.com',
            'x-forwarded-for': '203.0.113.9',
            connection: 'keep-alive, x-secret',
            'x-secret': 'hop',
            'keep-alive': 'timeout=5',
            te: 'trailers',
            'x-keep': 'end-to-end',
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end('payload');
    });
    const echoed = JSON.parse(body) as { headers: Record<string, string>; body: string; method: string };
    expect(status).toBe(200);
    expect(echoed.method).toBe('POST');
    expect(echoed.body).toBe('payload');
    expect(echoed.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(echoed.headers['x-forwarded-proto']).toBe('http');
    expect(echoed.headers['x-forwarded-host']).toBe('app.example.com');
    expect(echoed.headers.host).toBe('app.example.com');
    expect(echoed.headers['x-keep']).toBe('end-to-end');
    expect(echoed.headers['x-secret']).toBeUndefined();
    expect(echoed.headers['keep-alive']).toBeUndefined();
    expect(echoed.headers.te).toBeUndefined();

    // And on the way back: the backend's Connection-listed and hop-by-hop headers stay behind.
    const back = await get(`${dp.url}/hop`);
    expect(back.status).toBe(200);
    expect(back.headers['x-visible']).toBe('end-to-end');
    expect(back.headers['x-upstream-secret']).toBeUndefined();
    expect(back.headers['proxy-authenticate']).toBeUndefined();
  });

  it('streams a 4 MiB response body intact', async () => {
    const dp = stack.dps[1]!;
    const res = await request(`${dp.url}/big?bytes=${4 << 20}`);
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(body.length).toBe(4 << 20);
    expect(body.every((byte) => byte === 97)).toBe(true);
  });
});

describe('the client side of a data plane process', () => {
  it('answers pipelined requests in order, each from the backend its route picks', async () => {
    const [b1, b2] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0]];
    await stack.applyConfig({
      pools: { one: pool('round_robin', [{ id: 'b1', address: b1.address }]), two: pool('round_robin', [{ id: 'b2', address: b2.address }]) },
      routes: { one: { match: { pathPrefix: '/' }, pools: [{ pool: 'one' }] }, two: { match: { pathPrefix: '/two' }, pools: [{ pool: 'two' }] } },
    });
    const dp = stack.dps[0]!;
    const { port } = new URL(dp.url);
    // Three requests in one write; the first goes to a backend that answers last.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(
          'GET /slow?ms=300 HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\nGET /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
        );
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    const answers = raw.split(/(?=HTTP\/1\.1 )/).map((a) => /x-backend: (\w+)/i.exec(a)?.[1]);
    expect(answers).toEqual(['b1', 'b2', 'b1']);
    expect(raw).toContain('b1 slow 300');
  });
});

describe('draining', () => {
  it('a draining backend finishes its in-flight request and gets nothing new', async () => {
    const [b1, b2] = stack.backends as [(typeof stack.backends)[0], (typeof stack.backends)[0]];
    const version = await stack.applyConfig({
      pools: {
        web: pool('round_robin', [
          { id: 'b1', address: b1.address },
          { id: 'b2', address: b2.address },
        ]),
      },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const dp = stack.dps[0]!;
    // Find which backend the next request lands on, then hold a 2 s request there.
    const probe = await get(`${dp.url}/`);
    const next = probe.headers['x-backend'] === 'b1' ? b2 : b1;
    const slow = get(`${dp.url}/slow?ms=2000`);
    await waitFor(() => next.active === 1, { message: 'the slow request to reach its backend' });
    const drained = next === b1 ? 'b1' : 'b2';
    const patch = await api('PATCH', `${stack.cp.url}/v1/pools/web/backends/${drained}`, { state: 'draining' }, { 'if-match': `"${version}"` });
    expect(patch.status).toBe(200);
    await stack.converge(patch.body.version);
    const hitsAtDrain = next.hits;
    expect(next.active).toBe(1);
    const seen = await distribution(`${dp.url}/`, 20);
    expect(Object.keys(seen)).toEqual([drained === 'b1' ? 'b2' : 'b1']);
    expect(next.hits).toBe(hitsAtDrain);
    const finished = await slow;
    expect(finished.status).toBe(200);
    expect(finished.body).toContain(`${drained} slow 2000`);
  });
});

describe('access log', () => {
  it('writes one JSON line per request with route, backend, retries and request id when asked to', async () => {
    const [b1] = stack.backends as [(typeof stack.backends)[0]];
    const version = await stack.applyConfig({
      // The dead backend first in id order; each request that lands on it is retried on b1.
      pools: {
        web: pool('round_robin', [
          { id: 'a-dead', address: '127.0.0.1:1' },
          { id: 'b1', address: b1.address },
        ]),
      },
      routes: { web: { match: { pathPrefix: '/app' }, pools: [{ pool: 'web' }] } },
    });
    const file = join(mkdtempSync(join(tmpdir(), 'lb-access-')), 'access.log');
    const dp = await DataPlane.start({ controlPlanes: [stack.cp.grpcAddress], nodeId: 'dp-log', extraArgs: ['--access-log', file] });
    let retriesCounted = Number.NaN;
    try {
      await waitFor(async () => (await dp.appliedVersion()) === version, { message: 'dp-log to apply the config' });
      for (let i = 0; i < 4; i++) expect((await get(`${dp.url}/app/${i}`, { 'x-request-id': `req-${i}` })).status).toBe(200);
      expect((await get(`${dp.url}/elsewhere`)).status).toBe(404);
      const metrics = await (await fetch(`${dp.adminUrl}/metrics`)).text();
      retriesCounted = Number(/^lb_dp_retries_total\{pool="web"\} (\d+)$/m.exec(metrics)?.[1]);
    } finally {
      expect(await dp.stop()).toBe(0); // flushes the log
    }
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(5);
    const proxied = lines.filter((l) => l.route === 'web');
    expect(proxied.map((l) => l.requestId).sort()).toEqual(['req-0', 'req-1', 'req-2', 'req-3']);
    for (const l of proxied) expect(l).toMatchObject({ status: 200, pool: 'web', backend: 'b1', method: 'GET', completed: true });
    // Requests whose first attempt hit the dead backend took one retry; the log and the metric agree.
    const retries = proxied.map((l) => l.retries as number);
    expect(retries.every((r) => r === 0 || r === 1)).toBe(true);
    expect(retries.reduce((a, b) => a + b, 0)).toBe(retriesCounted);
    expect(retriesCounted).toBeGreaterThan(0);
    const local = lines.find((l) => l.url === '/elsewhere');
    expect(local).toMatchObject({ status: 404, lbError: 'no_route' });
    expect(local).not.toHaveProperty('backend');
    // Ids are made for requests that go upstream; a local answer carries only the client's own.
    expect(local!.requestId).toBeUndefined();
  });
});
