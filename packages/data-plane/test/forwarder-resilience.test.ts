import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataPlaneNode } from '../src/node.js';
import { call as callForBuffer, deadAddress, startBackend, startTestNode, type Backend, type Reply, type TestNode } from './helpers.js';

/** `call` with the body decoded as UTF-8. */
async function call(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Omit<Reply, 'body'> & { body: string }> {
  const reply = await callForBuffer(base, path, options);
  return { ...reply, body: reply.body.toString('utf8') };
}

/** One raw exchange: what the proxy answers to `raw` (first status line). */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (c) => (out += c.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', () => resolve(out));
    socket.write(data);
    setTimeout(() => socket.end(), 300);
  });
}

describe('forwarder resilience', () => {
  let node: DataPlaneNode;
  let ok: Backend;
  let failing: Backend;
  let slow: Backend;
  let dead: string;
  let apply: TestNode['apply'];

  const pool = (addresses: string[], extra: Record<string, unknown> = {}) => ({
    backends: addresses.map((address, i) => ({ id: `b${i}`, address })),
    ...extra,
  });

  beforeAll(async () => {
    ok = await startBackend('ok', (req, res) => {
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ backend: 'ok', headers: req.headers })));
    });
    failing = await startBackend('failing', (req, res) => {
      req.resume();
      req.on('end', () => {
        res.statusCode = 503;
        res.end('down');
      });
    });
    slow = await startBackend('slow', (req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), 300);
    });
    dead = await deadAddress();
    ({ node, apply } = await startTestNode({
      proxy: { maxHeaderSize: 4096 },
    }));
  });

  afterAll(async () => {
    await node.stop();
    await Promise.all([ok, failing, slow].map((x) => x.close()));
  });

  it('retries a connect failure and a 503 on another backend, telling it X-Retry-Count', async () => {
    for (const other of [dead, failing.address]) {
      apply({ pools: { web: pool([other, ok.address]) }, routes: { r: { pools: [{ pool: 'web' }] } } });
      const before = ok.seen.length;
      for (let i = 0; i < 6; i++) {
        const r = await call(node.proxyUrl, '/');
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body).backend).toBe('ok');
      }
      const counts = ok.seen.slice(before).map((x) => x.headers['x-retry-count'] ?? '0');
      // Round robin also hands the retries' picks out, so most first picks land on the bad one.
      expect(counts).toContain('1');
      expect(counts.every((c) => c === '0' || c === '1')).toBe(true);
    }
    const metrics = (await call(node.adminUrl, '/metrics')).body;
    expect(metrics).toMatch(/lb_dp_retries_total\{pool="web"\} [1-9]/);
  });

  it('never retries a POST, unless it carries the idempotency header', async () => {
    apply({ pools: { web: pool([dead, ok.address], { retry: { idempotencyHeader: 'Idempotency-Key' } }) }, routes: { r: { pools: [{ pool: 'web' }] } } });
    const statuses = new Set<number>();
    for (let i = 0; i < 4; i++) statuses.add((await call(node.proxyUrl, '/', { method: 'POST', body: 'x' })).status);
    expect(statuses).toEqual(new Set([200, 502]));
    for (let i = 0; i < 4; i++) {
      const r = await call(node.proxyUrl, '/', { method: 'POST', body: 'payload', headers: { 'idempotency-key': `k${i}` } });
      expect(r.status).toBe(200);
    }
    // Retries off on the route: the route's policy replaces the pool's.
    apply({ pools: { web: pool([dead, ok.address]) }, routes: { r: { pools: [{ pool: 'web' }], retry: { attempts: 1 } } } });
    const off = new Set<number>();
    for (let i = 0; i < 4; i++) off.add((await call(node.proxyUrl, '/')).status);
    expect(off).toEqual(new Set([200, 502]));
  });

  it('passes X-Request-Id and traceparent through and makes an X-Request-Id when there is none', async () => {
    apply({ pools: { web: pool([ok.address]) }, routes: { r: { pools: [{ pool: 'web' }] } } });
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const a = JSON.parse((await call(node.proxyUrl, '/', { headers: { 'x-request-id': 'mine', traceparent: tp } })).body);
    expect(a.headers['x-request-id']).toBe('mine');
    expect(a.headers.traceparent).toBe(tp);
    const b = JSON.parse((await call(node.proxyUrl, '/')).body);
    const c = JSON.parse((await call(node.proxyUrl, '/')).body);
    expect(b.headers['x-request-id']).toMatch(/.+-\w+$/);
    expect(b.headers['x-request-id']).not.toBe(c.headers['x-request-id']);
  });

  it('holds each client key to its rate with 429 and Retry-After', async () => {
    apply({
      pools: { web: pool([ok.address]) },
      routes: { r: { pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: 1, burst: 2, key: 'header', header: 'x-api-key' } } },
    });
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await call(node.proxyUrl, '/', { headers: { 'x-api-key': 'a' } }));
    expect(a.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(a[2]!.headers['retry-after']).toBe('1');
    expect((await call(node.proxyUrl, '/', { headers: { 'x-api-key': 'b' } })).status).toBe(200);
    const metrics = (await call(node.adminUrl, '/metrics')).body;
    expect(metrics).toContain('lb_dp_rate_limited_total{route="r"} 1');
  });

  it('answers 503 with X-LB-Overloaded past a circuit-breaker limit', async () => {
    apply({
      pools: { web: pool([slow.address], { circuitBreaker: { maxRequests: 2, maxPendingRequests: 0, perBackend: {} } }) },
      routes: { r: { pools: [{ pool: 'web' }] } },
    });
    const replies = await Promise.all([1, 2, 3, 4].map(() => call(node.proxyUrl, '/')));
    const over = replies.filter((r) => r.status === 503);
    expect(replies.filter((r) => r.status === 200)).toHaveLength(2);
    expect(over).toHaveLength(2);
    expect(over[0]!.headers['x-lb-overloaded']).toBe('pool');
    const metrics = (await call(node.adminUrl, '/metrics')).body;
    expect(metrics).toContain('lb_dp_overloaded_total{pool="web",limit="pool"} 2');
  });

  it('opens the error-rate breaker of a failing backend and sends its share elsewhere', async () => {
    apply({
      pools: {
        web: pool([failing.address, ok.address], {
          retry: { attempts: 1 },
          circuitBreaker: { errorRate: { minRequests: 4, thresholdPercent: 50, openMs: 60000 } },
        }),
      },
      routes: { r: { pools: [{ pool: 'web' }] } },
    });
    const statuses = [];
    for (let i = 0; i < 20; i++) statuses.push((await call(node.proxyUrl, '/')).status);
    // The first 503s open the breaker; after that every request goes to the healthy backend.
    expect(statuses.slice(-10)).toEqual(Array(10).fill(200));
    expect((await call(node.adminUrl, '/metrics')).body).toContain('lb_dp_circuit_breaker_opened_total{pool="web"} 1');
  });

  it('does not count clients that hang up as backend failures: the breaker stays closed', async () => {
    apply({
      pools: {
        impatient: pool([slow.address], { retry: { attempts: 1 }, circuitBreaker: { errorRate: { minRequests: 4, thresholdPercent: 50, openMs: 60000 } } }),
      },
      routes: { r: { pools: [{ pool: 'impatient' }] } },
    });
    const port = node.proxyAddress!.port;
    // Impatient clients: each sends a request to the slow backend and leaves after 50 ms.
    await Promise.all(
      [1, 2, 3, 4, 5, 6].map(
        () =>
          new Promise<void>((resolve) => {
            const socket = connect(port, '127.0.0.1');
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
            setTimeout(() => socket.destroy(), 50);
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    const r = await call(node.proxyUrl, '/');
    expect(r.headers['x-lb-overloaded']).toBeUndefined();
    expect(r.status).toBe(200);
  });

  it('a half-open breaker whose trial request never reached the backend still lets the next trial through', async () => {
    let failingNow = true;
    const flaky = await startBackend('flaky', (req, res) => {
      req.resume();
      req.on('end', () => {
        res.statusCode = failingNow ? 503 : 200;
        res.end(failingNow ? 'down' : 'up');
      });
    });
    try {
      apply({
        pools: {
          flaky: pool([flaky.address], {
            retry: { attempts: 1 },
            circuitBreaker: { errorRate: { minRequests: 2, thresholdPercent: 50, openMs: 100, trialRequests: 1 } },
          }),
        },
        routes: { r: { pools: [{ pool: 'flaky' }] } },
      });
      for (let i = 0; i < 2; i++) expect((await call(node.proxyUrl, '/')).status).toBe(503);
      expect((await call(node.proxyUrl, '/')).headers['x-lb-overloaded']).toBe('circuit-open');
      failingNow = false;
      await new Promise((r) => setTimeout(r, 150));
      // The trial goes to a request whose chunked body is malformed: it fails before any backend sees it.
      expect(await raw(node.proxyAddress!.port, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-a-size\r\n\r\n')).toMatch(
        /^HTTP\/1\.1 400/,
      );
      const r = await call(node.proxyUrl, '/');
      expect(r.headers['x-lb-overloaded']).toBeUndefined();
      expect(r.status).toBe(200);
    } finally {
      await flaky.close();
    }
  });

  it('refuses two Host headers and oversized heads before any backend sees them', async () => {
    apply({ pools: { web: pool([ok.address]) }, routes: { r: { pools: [{ pool: 'web' }] } } });
    const before = ok.seen.length;
    const port = node.proxyAddress!.port;
    expect(await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(5000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect(ok.seen.length).toBe(before);
  });
});
