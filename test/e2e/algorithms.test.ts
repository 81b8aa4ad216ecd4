// Balancing algorithms through the real path (REST → etcd → gRPC → data plane → loopback backends):
// under concurrent load the load-aware algorithms send measurably less to a slow backend than round
// robin does, and sticky cookies and hash keys agree across two data planes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stack } from '../support/stack.js';

/** A loopback backend that answers its name after `delayMs`, counting hits. */
interface TimedBackend {
  name: string;
  address: string;
  server: Server;
}

async function timedBackend(name: string, delayMs: number): Promise<TimedBackend> {
  const server = createServer((req, res) => {
    req.resume();
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(name);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { name, server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const SLOW_MS = 40;
const REQUESTS = 600;
const CONCURRENCY = 12;

let stack: Stack;
let backends: TimedBackend[];
const client = new Agent({ connections: CONCURRENCY, pipelining: 1 });

beforeAll(async () => {
  [stack, backends] = await Promise.all([
    Stack.start({ dataPlanes: 2, backends: 0 }),
    Promise.all([timedBackend('fast-1', 0), timedBackend('fast-2', 0), timedBackend('slow', SLOW_MS)]),
  ]);
});

afterAll(async () => {
  await client.close();
  await stack?.stop();
  for (const b of backends ?? []) {
    b.server.closeAllConnections();
    b.server.close();
  }
});

function config(algorithm: string, extra: Record<string, unknown> = {}) {
  return {
    pools: { web: { algorithm, backends: backends.map((b) => ({ id: b.name, address: b.address })), ...extra } },
    routes: { all: { pools: [{ pool: 'web' }] } },
  };
}

/** Sends REQUESTS requests, CONCURRENCY at a time, through data plane 1; counts answers per backend. */
async function load(): Promise<Record<string, number>> {
  const url = `${stack.dps[0]!.url}/work`;
  const seen: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      next++;
      const res = await request(url, { dispatcher: client });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      const name = String(res.headers['x-backend']);
      seen[name] = (seen[name] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return seen;
}

describe('load-aware algorithms avoid a slow backend', () => {
  const slowShare: Record<string, number> = {};

  it.each(['round_robin', 'least_connections', 'p2c', 'least_response_time'])('%s under concurrent load', async (algorithm) => {
    await stack.applyConfig(config(algorithm));
    const seen = await load();
    expect(Object.values(seen).reduce((a, b) => a + b, 0)).toBe(REQUESTS);
    slowShare[algorithm] = (seen.slow ?? 0) / REQUESTS;
    // Every backend still gets traffic: load awareness is not an outage for the slow one.
    if (algorithm !== 'least_response_time') expect(seen.slow ?? 0).toBeGreaterThan(0);
  });

  it('round robin gives the slow backend its third; the others at most half of what round robin gives', () => {
    expect(slowShare.round_robin).toBeGreaterThan(0.3);
    for (const algorithm of ['least_connections', 'p2c', 'least_response_time']) {
      expect(slowShare[algorithm], `${algorithm}: ${JSON.stringify(slowShare)}`).toBeLessThan(slowShare.round_robin! / 2);
    }
  });
});

describe('affinity across data planes', () => {
  it('a sticky cookie set by one data plane is honoured by the other', async () => {
    await stack.applyConfig(config('least_connections', { sticky: { cookie: 'srv', ttlSeconds: 60 } }));
    const [dp1, dp2] = stack.dps as [Stack['dps'][0], Stack['dps'][0]];
    const first = await request(`${dp1.url}/`);
    await first.body.text();
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/^srv=[a-z0-9-]+\.[A-Za-z0-9_-]{22}; Path=\/; Max-Age=60; HttpOnly; SameSite=Lax$/);
    const pinned = String(first.headers['x-backend']);
    const cookie = setCookie.split(';')[0]!;
    for (const dp of [dp2, dp1, dp2, dp1, dp2]) {
      const res = await request(`${dp.url}/`, { headers: { cookie } });
      await res.body.text();
      expect(res.headers['x-backend']).toBe(pinned);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // A forged cookie is not honoured: the request is balanced and re-pinned with a valid cookie.
    const forged = await request(`${dp2.url}/`, { headers: { cookie: `srv=${pinned}.AAAAAAAAAAAAAAAAAAAAAA` } });
    await forged.body.text();
    expect(String(forged.headers['set-cookie'])).toMatch(/^srv=[a-z0-9-]+\.[A-Za-z0-9_-]{22};/);
  });

  it('maglev on a header sends a key to the same backend from both data planes', async () => {
    await stack.applyConfig(config('maglev', { hashOn: { source: 'header', name: 'x-user' } }));
    const where = async (url: string, user: string) => {
      const res = await request(`${url}/`, { headers: { 'x-user': user } });
      await res.body.text();
      return String(res.headers['x-backend']);
    };
    const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    const fromDp1 = await Promise.all(users.map((u) => where(stack.dps[0]!.url, u)));
    const fromDp2 = await Promise.all(users.map((u) => where(stack.dps[1]!.url, u)));
    expect(fromDp2).toEqual(fromDp1);
    expect(new Set(fromDp1).size).toBeGreaterThan(1);
  });
});
