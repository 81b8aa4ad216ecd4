// openStream (http2/open-stream.ts): session.request() with AsyncResource.bind swapped for the
// call only. The stream must be the one node's request() gives, the swap must never outlive the
// call (not even when request() throws), and a request queued until the session connects must
// still run in its caller's async context, which is what node's bind is there for.
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStream } from '../src/http2/open-stream.js';

const nodeBind = AsyncResource.prototype.bind;
let server: http2.Http2Server;
let url = '';

beforeAll(async () => {
  server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200 });
    stream.end(`${headers[':method']} ${headers[':path']}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function answer(stream: http2.ClientHttp2Stream): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}

describe('openStream', () => {
  it('opens the stream request() would, on a connected session, and puts node’s bind back', async () => {
    const session = http2.connect(url);
    try {
      await new Promise((resolve) => session.once('connect', resolve));
      const stream = openStream(session, { ':method': 'GET', ':path': '/connected' }, true);
      expect(AsyncResource.prototype.bind).toBe(nodeBind);
      expect(await answer(stream)).toEqual({ status: 200, body: 'GET /connected' });
    } finally {
      session.destroy();
    }
  });

  it('puts node’s bind back when request() throws', () => {
    const session = http2.connect(url);
    try {
      expect(() => openStream(session, { ':bogus': 'x' }, true)).toThrow(expect.objectContaining({ code: 'ERR_HTTP2_INVALID_PSEUDOHEADER' }));
      expect(AsyncResource.prototype.bind).toBe(nodeBind);
    } finally {
      session.destroy();
    }
  });

  it('runs a request queued until the session connects in the async context of its caller', async () => {
    // The session is made outside the context: only the bound continuation can carry it.
    const session = http2.connect(url);
    const context = new AsyncLocalStorage<string>();
    try {
      expect(session.connecting).toBe(true);
      const { stream, seenAtReady } = context.run('the caller', () => {
        const s = openStream(session, { ':method': 'GET', ':path': '/queued' }, true);
        // 'ready' is emitted by the continuation node runs once connected.
        const seen = new Promise<string | undefined>((resolve) => s.once('ready', () => resolve(context.getStore())));
        return { stream: s, seenAtReady: seen };
      });
      expect(AsyncResource.prototype.bind).toBe(nodeBind);
      expect(await seenAtReady).toBe('the caller');
      expect(await answer(stream)).toEqual({ status: 200, body: 'GET /queued' });
    } finally {
      session.destroy();
    }
  });
});
