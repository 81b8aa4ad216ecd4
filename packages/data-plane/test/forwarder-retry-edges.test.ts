import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataPlaneNode } from '../src/node.js';
import { call, deadAddress, startBackend, startTestNode, type Backend, type TestNode } from './helpers.js';

/** Sends a request and hangs up after `ms`, before any answer. */
function hangUpAfter(port: number, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => socket.destroy(), ms);
    });
    socket.on('close', () => resolve());
    socket.on('error', () => undefined);
  });
}

describe('forwarder: retries and picks that are given up', () => {
  let node: DataPlaneNode;
  let slow: Backend;
  let slow2: Backend;
  let plain: Backend;
  let dead: string;
  let apply: TestNode['apply'];

  beforeAll(async () => {
    slow = await startBackend('slow', (req, res) => {
      req.resume();
      setTimeout(() => res.end('sticky'), 300);
    });
    slow2 = await startBackend('slow2', (req, res) => {
      req.resume();
      setTimeout(() => res.end('sticky'), 300);
    });
    plain = await startBackend('plain', (req, res) => {
      req.resume();
      req.on('end', () => res.end('plain'));
    });
    dead = await deadAddress();
    ({ node, apply } = await startTestNode({
      // Backoff jitter at its top: a retry waits (almost) the whole backoff.
      random: () => 0.999,
    }));
  });

  afterAll(async () => {
    await node.stop();
    await Promise.all([slow, slow2, plain].map((x) => x.close()));
  });

  it('gives the retry budget back when the client leaves during the backoff', async () => {
    // 10 retries per 10 s window, and a backoff of ~400 ms before each.
    apply({
      pools: {
        web: { backends: [{ id: 'b0', address: dead }], retry: { attempts: 2, backoffMs: 400, maxBackoffMs: 400, budgetPercent: 0, minRetriesPerSecond: 1 } },
      },
      routes: { r: { pools: [{ pool: 'web' }] } },
    });
    const port = Number(new URL(node.proxyUrl).port);
    // Each fails to connect at once, gets a retry granted, and its client hangs up during the backoff.
    await Promise.all(Array.from({ length: 10 }, () => hangUpAfter(port, 100)));
    await new Promise((r) => setTimeout(r, 500));
    const retried = async () => {
      const text = (await call(node.adminUrl, '/metrics')).body.toString('utf8');
      const count = (name: string) => Number(/ (\d+)$/.exec(text.split('\n').find((l) => l.startsWith(`${name}{pool="web"}`)) ?? ' 0')![1]);
      return { retries: count('lb_dp_retries_total'), exhausted: count('lb_dp_retry_budget_exhausted_total') };
    };
    const before = await retried();
    // The retries of those clients were never sent, so the budget still has room for this one.
    const r = await call(node.proxyUrl, '/');
    expect(r.status).toBe(502);
    const after = await retried();
    expect(after.exhausted).toBe(0);
    expect(after.retries - before.retries).toBe(1);
  });

  it("retries do not use up fresh requests' turns: a dead backend of two gets half of the first attempts, not all", async () => {
    apply({
      pools: {
        pair: {
          algorithm: 'round_robin',
          backends: [
            { id: 'gone', address: dead },
            { id: 'up', address: plain.address },
          ],
          retry: { attempts: 2, backoffMs: 0, maxBackoffMs: 0, budgetPercent: 100, minRetriesPerSecond: 100 },
        },
      },
      routes: { r: { pools: [{ pool: 'pair' }] } },
    });
    const connectErrors = async () => {
      const text = (await call(node.adminUrl, '/metrics')).body.toString('utf8');
      return Number(/ (\d+)$/.exec(text.split('\n').find((l) => l.startsWith('lb_dp_upstream_errors_total{pool="pair",kind="connect"}')) ?? ' 0')![1]);
    };
    const before = await connectErrors();
    for (let i = 0; i < 20; i++) expect((await call(node.proxyUrl, '/')).body.toString('utf8')).toBe('plain');
    // Round robin between the two: 10 first attempts each. Retries moving the rotation on made it 20.
    const failed = (await connectErrors()) - before;
    expect(failed).toBeGreaterThanOrEqual(9);
    expect(failed).toBeLessThanOrEqual(11);
  });

  it("over a limit, a pick from another pool of the route does not carry the rejected sticky pick's cookie", async () => {
    apply({
      pools: {
        pinned: {
          backends: [
            { id: 's0', address: slow.address },
            { id: 's1', address: slow2.address },
          ],
          sticky: { cookie: 'pin' },
          circuitBreaker: { maxRequests: 1 },
        },
        other: { backends: [{ id: 'p0', address: plain.address }] },
      },
      routes: { r: { pools: [{ pool: 'pinned' }, { pool: 'other' }] } },
    });
    const replies = await Promise.all(Array.from({ length: 8 }, () => call(node.proxyUrl, '/')));
    const fromPlain = replies.filter((r) => r.body.toString('utf8') === 'plain');
    const fromSticky = replies.filter((r) => r.body.toString('utf8') === 'sticky');
    expect(fromSticky.length).toBeGreaterThan(0);
    expect(fromSticky.every((r) => String(r.headers['set-cookie']).startsWith('pin='))).toBe(true);
    expect(fromPlain.length).toBeGreaterThan(fromSticky.length);
    expect(fromPlain.map((r) => r.headers['set-cookie'])).toEqual(fromPlain.map(() => undefined));
  });
});
