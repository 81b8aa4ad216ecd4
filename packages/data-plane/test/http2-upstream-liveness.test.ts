// The time limits of HTTP/2 connections to backends, which run on the upstream sweeper's tick: a
// session whose backend went silent without a FIN or RST (a host gone, a firewall that dropped the
// connection's state) is found by a PING and destroyed, so that later calls get a new connection
// instead of hanging on the dead one; a response body the proxy is not reading (its client is slow)
// is never counted as the backend's silence. Real node:http2 backends, behind a TCP relay that can
// go silent the way such a network path does (test/support/silenceable-relay.ts).
import http2, { type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Http2Upstream, type Http2UpstreamOptions } from '../src/upstream/http2-upstream.js';
import type { UpstreamHandler, UpstreamRequest } from '../src/upstream/upstream.js';
import { type SilenceableRelay, silenceableRelay } from '../../../test/support/silenceable-relay.js';
import { waitFor } from './helpers.js';

/** An h2c backend: GET /big answers `size` bytes, anything else 'ok'. */
async function backend(size = 0): Promise<{ server: Http2Server; address: AddressInfo }> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers[':path'] === '/big') {
      stream.respond({ ':status': 200 });
      stream.end(Buffer.alloc(size, 97));
    } else {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: server.address() as AddressInfo };
}

interface Outcome {
  status?: number;
  body: number;
  error?: Error & { code?: string };
  ms: number;
}

/** One request through `pool`; `hold` keeps the body unread for that long once the first chunk came (back-pressure). */
function request(pool: Http2Upstream, path: string, extra: Partial<UpstreamRequest> = {}, hold = 0): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const out: Outcome = { body: 0, ms: 0 };
    let resume: () => void = () => {};
    let held = false;
    const done = (error?: Error) => {
      out.ms = performance.now() - started;
      if (error !== undefined) out.error = error;
      resolve(out);
    };
    const handler: UpstreamHandler = {
      onConnect: () => {},
      onHeaders: (status, _headers, resumeReading) => {
        out.status = status;
        resume = resumeReading;
        return true;
      },
      onData: (chunk) => {
        out.body += chunk.length;
        if (hold === 0 || held) return true;
        held = true;
        setTimeout(resume, hold);
        return false;
      },
      onComplete: () => done(),
      onError: done,
    };
    pool.dispatch({ path, method: 'GET', headers: ['host', 'b'], body: null, ...extra }, handler);
  });
}

const OPTIONS: Http2UpstreamOptions = {
  connectTimeoutMs: 1000,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  maxStreamsPerConnection: 10,
};

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setUp(options: Partial<Http2UpstreamOptions>, size = 0): Promise<{ pool: Http2Upstream; path: SilenceableRelay }> {
  const b = await backend(size);
  cleanup.push(() => new Promise((resolve) => b.server.close(() => resolve())));
  const path = await silenceableRelay(`${b.address.address}:${b.address.port}`);
  cleanup.push(() => path.close());
  const pool = new Http2Upstream(path.address, { ...OPTIONS, ...options });
  cleanup.push(() => pool.destroy());
  return { pool, path };
}

describe('an HTTP/2 connection to a backend that went silent (upstream liveness PING)', () => {
  it('is found by a PING and destroyed, its call failed long before its own timeout, and the next call gets a new connection', async () => {
    const { pool, path } = await setUp({ pingIntervalMs: 300 });
    expect((await request(pool, '/')).status).toBe(200);
    expect(path.accepted).toBe(1);
    path.goSilent();
    // Nothing of it reaches the backend, and the head would be waited for 10 s.
    const lost = await request(pool, '/');
    expect(lost.status).toBeUndefined();
    expect(lost.error?.code).toBe('LB_UPSTREAM_CLOSED');
    expect(lost.error?.message).toMatch(/did not answer a PING within 300 ms/);
    // Silent 300 ms, then 300 ms without an answer, each seen up to two 100 ms ticks late.
    expect(lost.ms).toBeLessThan(2_000);
    await waitFor(() => pool.openConnections === 0, 2_000, 'the dead session let go');
    const next = await request(pool, '/');
    expect(next.status).toBe(200);
    expect(path.accepted).toBe(2);
  });

  it('without the PING (pingIntervalMs 0), the same call waits for its own headers timeout (on the sweeper: never early, at most two ticks late)', async () => {
    const { pool, path } = await setUp({ pingIntervalMs: 0 });
    expect((await request(pool, '/')).status).toBe(200);
    path.goSilent();
    const lost = await request(pool, '/', { headersTimeout: 1_500 });
    expect(lost.error?.code).toBe('LB_UPSTREAM_HEADERS_TIMEOUT');
    expect(lost.ms).toBeGreaterThanOrEqual(1_500);
    expect(lost.ms).toBeLessThan(2_500);
    expect(pool.openConnections).toBe(1);
  });

  it('keeps a live, idle connection: the backend answers each PING', async () => {
    const { pool, path } = await setUp({ pingIntervalMs: 200 });
    expect((await request(pool, '/')).status).toBe(200);
    // Four intervals of silence: two PINGs or more, each answered.
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(pool.openConnections).toBe(1);
    expect((await request(pool, '/')).status).toBe(200);
    expect(path.accepted).toBe(1);
  });
});

describe('HTTP/2 upstream time limits on the sweeper', () => {
  it('does not count a body the proxy is not reading (a slow client) as the backend going silent', async () => {
    const { pool } = await setUp({ bodyTimeoutMs: 300 }, 1024 * 1024);
    const held = await request(pool, '/big', {}, 900);
    expect(held.error).toBeUndefined();
    expect(held.body).toBe(1024 * 1024);
    expect(held.ms).toBeGreaterThanOrEqual(900);
  });

  it('lets a session go once it has been idle for keepAliveTimeoutMs', async () => {
    const { pool } = await setUp({ keepAliveTimeoutMs: 300 });
    expect((await request(pool, '/')).status).toBe(200);
    expect(pool.openConnections).toBe(1);
    await waitFor(() => pool.openConnections === 0, 2_000, 'the idle session closed');
  });
});
