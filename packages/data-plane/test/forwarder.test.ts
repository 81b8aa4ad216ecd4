import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataPlaneNode } from '../src/node.js';
import { call, deadAddress, simpleConfig, startBackend, startTestNode, waitFor, type Backend, type TestNode, ENGINE_PAIRS } from './helpers.js';

describe.each(ENGINE_PAIRS)('forwarder ($server server, $client upstream client)', ({ server, client }) => {
  let node: DataPlaneNode;
  let a: Backend;
  let b: Backend;
  let echo: Backend;
  let silent: Backend;
  let apply: TestNode['apply'];

  beforeAll(async () => {
    a = await startBackend('a');
    b = await startBackend('b');
    echo = await startBackend('echo', (req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), headers: req.headers })));
    });
    silent = await startBackend('silent', () => {}); // never answers
    ({ node, apply } = await startTestNode({
      upstream: { headersTimeoutMs: 500, client },
      proxy: { server },
      drainTimeoutMs: 2_000,
    }));
  });

  afterAll(async () => {
    await node.stop();
    await Promise.all([a, b, echo, silent].map((x) => x.close()));
  });

  it('answers 503 and is not ready before any snapshot', async () => {
    const r = await call(node.proxyUrl, '/');
    expect(r.status).toBe(503);
    expect(r.headers['x-lb-error']).toBe('no_config');
    expect((await call(node.adminUrl, '/readyz')).status).toBe(503);
    expect((await call(node.adminUrl, '/healthz')).status).toBe(200);
  });

  it('round-robins across active backends and becomes ready', async () => {
    apply(simpleConfig([a.address, b.address]));
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await call(node.proxyUrl, '/x')).body.toString());
    expect(bodies.sort()).toEqual(['a', 'a', 'b', 'b']);
    expect((await call(node.adminUrl, '/readyz')).status).toBe(200);
  });

  it('keeps Host, sets X-Forwarded-*, strips hop-by-hop headers both ways', async () => {
    apply(simpleConfig([echo.address]));
    const r = await call(node.proxyUrl, '/h?q=1', {
      headers: {
        Host: 'Shop.Example.com:8080',
        'X-Forwarded-For': '203.0.113.9',
        'X-Forwarded-Proto': 'https',
        Connection: 'keep-alive, X-Hop',
        'X-Hop': 'secret',
        'Keep-Alive': 'timeout=1',
        'X-Keep': 'yes',
      },
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body.toString()).headers as Record<string, string>;
    expect(seen.host).toBe('Shop.Example.com:8080');
    expect(seen['x-forwarded-host']).toBe('Shop.Example.com:8080');
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-keep']).toBe('yes');
    expect(seen['x-hop']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();

    const hop = await startBackend('hop', (_req, res) => {
      res.writeHead(201, 'Made', { Connection: 'X-Private', 'X-Private': 'p', 'X-Public': 'q', 'Proxy-Authenticate': 'Basic', 'Set-Cookie': ['a=1', 'b=2'] });
      res.end('ok');
    });
    apply(simpleConfig([hop.address]));
    const r2 = await call(node.proxyUrl, '/');
    expect(r2.status).toBe(201);
    expect(r2.headers['x-public']).toBe('q');
    expect(r2.headers['x-private']).toBeUndefined();
    expect(r2.headers['proxy-authenticate']).toBeUndefined();
    expect(r2.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    await hop.close();
  });

  it('answers 404 without a route, 503 without an active backend, 502 when the backend is down, 504 when it is slow', async () => {
    apply({
      pools: { web: { backends: [{ id: 'a', address: a.address }] }, off: { backends: [{ id: 'a', address: a.address, state: 'draining' }] } },
      routes: {
        api: { match: { host: 'api.example.com', pathPrefix: '/api' }, pools: [{ pool: 'web' }] },
        off: { match: { pathPrefix: '/off' }, pools: [{ pool: 'off' }] },
      },
    });
    const miss = await call(node.proxyUrl, '/', { headers: { Host: 'api.example.com' } });
    expect(miss.status).toBe(404);
    expect(miss.body.toString()).toMatch(/no route/);
    expect((await call(node.proxyUrl, '/api/x', { headers: { Host: 'API.example.com:80' } })).body.toString()).toBe('a');
    const off = await call(node.proxyUrl, '/off');
    expect(off.status).toBe(503);
    expect(off.headers['x-lb-error']).toBe('no_backend');

    apply(simpleConfig([await deadAddress()]));
    const dead = await call(node.proxyUrl, '/');
    expect(dead.status).toBe(502);
    expect(dead.headers['x-lb-error']).toBe('upstream_connect');

    const silentConfig = simpleConfig([silent.address]);
    silentConfig.pools.web!.timeouts = { connectMs: 1000, requestMs: 500, idleMs: 60000 };
    apply(silentConfig);
    const slow = await call(node.proxyUrl, '/');
    expect(slow.status).toBe(504);
    expect(slow.body.toString()).toMatch(/timed out/);

    const metrics = (await call(node.adminUrl, '/metrics')).body.toString();
    expect(metrics).toContain('lb_dp_requests_total{route="",pool="",status_class="4xx"}');
    expect(metrics).toContain('lb_dp_requests_total{route="off",pool="",status_class="5xx"} 1');
    // The connect failure was retried once (the default policy), on the only backend there is.
    expect(metrics).toMatch(/lb_dp_upstream_errors_total\{pool="web",kind="connect"\} 2/);
    expect(metrics).toMatch(/lb_dp_upstream_errors_total\{pool="web",kind="timeout"\} 1/);
  });

  it('streams large request and response bodies without buffering them whole', async () => {
    apply(simpleConfig([echo.address]));
    const up = Buffer.alloc(24 * 1024 * 1024, 7);
    const r = await call(node.proxyUrl, '/upload', { method: 'POST', body: up, headers: { 'content-type': 'application/octet-stream' } });
    const seen = JSON.parse(r.body.toString());
    expect(seen.bytes).toBe(up.length);
    expect(seen.sha256).toBe(createHash('sha256').update(up).digest('hex'));

    const size = 32 * 1024 * 1024;
    const big = await startBackend('big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (sent < size) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    apply(simpleConfig([big.address]));
    // A slow reader: the proxy must hold back the backend instead of buffering 32 MiB.
    const got = await new Promise<number>((resolve, reject) => {
      request(`${node.proxyUrl}/`, { agent: false }, (res) => {
        let n = 0;
        res.pause();
        setTimeout(() => {
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.resume();
        }, 300);
      })
        .on('error', reject)
        .end();
    });
    expect(got).toBe(size);
    await big.close();
  });

  it('lets a request in flight finish when a snapshot removes its backend', async () => {
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const slow = await startBackend('slow', (_req, res) => {
      res.write('part1-');
      release();
      void gate.then(() => res.end('part2'));
    });
    apply(simpleConfig([slow.address]));
    const pending = call(node.proxyUrl, '/');
    await started;
    apply(simpleConfig([a.address])); // slow's upstream pool is closed gracefully
    expect((await call(node.proxyUrl, '/')).body.toString()).toBe('a');
    finish();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('part1-part2');
    await slow.close();
  });

  it('shows the running config on /config', async () => {
    const version = apply({
      pools: {
        web: {
          algorithm: 'weighted_round_robin',
          backends: [
            { id: 'a', address: a.address, weight: 5 },
            { id: 'b', address: b.address, state: 'draining' },
          ],
        },
      },
      routes: { all: { pools: [{ pool: 'web' }] } },
    });
    const view = JSON.parse((await call(node.adminUrl, '/config')).body.toString());
    expect(view).toMatchObject({
      version,
      source: 'control-plane',
      pools: {
        web: {
          algorithm: 'weighted_round_robin',
          backends: [
            { id: 'a', address: a.address, weight: 5, state: 'active' },
            { id: 'b', address: b.address, weight: 1, state: 'draining' },
          ],
        },
      },
      routes: { all: { match: {}, pools: [{ pool: 'web', weight: 1 }] } },
    });
    expect(typeof view.appliedAt).toBe('string');
    for (let i = 0; i < 3; i++) expect((await call(node.proxyUrl, '/')).body.toString()).toBe('a');
  });

  it('drains on stop: /readyz turns 503 and requests in flight finish', async () => {
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let arrived = false;
    const slow = await startBackend('slow', (_req, res) => {
      arrived = true;
      void gate.then(() => res.end('done'));
    });
    apply(simpleConfig([slow.address]));
    const pending = call(node.proxyUrl, '/');
    await waitFor(() => arrived, 2_000, 'request to reach the backend');
    const stopped = node.stop();
    await waitFor(async () => (await call(node.adminUrl, '/readyz')).status === 503, 2_000, '/readyz 503');
    await expect(call(node.proxyUrl, '/')).rejects.toThrow();
    finish();
    expect((await pending).body.toString()).toBe('done');
    await stopped;
    await slow.close();
  });
});
