// HTTP/2 backends that misbehave. One that sends GOAWAY and then a malformed frame leaves, on
// Node 20, a client session nghttp2 has ended and node is never told about: it neither reads nor
// closes. The pool must still let such a session go once it is idle, and still close, instead of
// keeping its socket for ever. One that closes its connection without answering must cost the
// client a 502, never a made-up 200 (found by the http2-upstream fuzz target).
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Http2Upstream } from '../src/upstream/http2-upstream.js';
import type { UpstreamHandler } from '../src/upstream/upstream.js';
import { FRAME, frame, type RawH2Backend, rawH2Backend } from './h2-frames.js';
import { call, startTestNode, waitFor } from './helpers.js';

/** GOAWAY, then a WINDOW_UPDATE one byte too long: what leaves a Node 20 session stuck. */
function strike(socket: Socket): void {
  socket.write(
    Buffer.concat([frame(FRAME.GOAWAY, 0, 0, Buffer.from([0, 0, 0, 1, 0, 0, 0, 0])), frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 0, 1, 0]))]),
  );
}

/** Sends one GET; resolves with the error it ends with. */
function failedRequest(pool: Http2Upstream): Promise<Error> {
  return new Promise((resolve, reject) => {
    const handler: UpstreamHandler = {
      onConnect: () => {},
      onHeaders: () => {
        reject(new Error('the hostile backend answered'));
        return false;
      },
      onData: () => true,
      onComplete: () => reject(new Error('the request completed')),
      onError: resolve,
    };
    pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'b'], body: null, headersTimeout: 300 }, handler);
  });
}

let backend: RawH2Backend | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => backend?.server.close(() => resolve()) ?? resolve());
});

const options = { connectTimeoutMs: 1000, headersTimeoutMs: 300, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 300, maxStreamsPerConnection: 10 };

describe('an HTTP/2 backend that sends GOAWAY and then a malformed frame', () => {
  it('costs its request a timeout, and its session is let go once idle', async () => {
    backend = await rawH2Backend(strike);
    const pool = new Http2Upstream(backend.address, options);
    try {
      const err = (await failedRequest(pool)) as Error & { code?: string };
      // Node 20: the head never comes. Node 22 and 24 end the session themselves (a protocol error).
      expect(['LB_UPSTREAM_HEADERS_TIMEOUT', 'LB_UPSTREAM_CLOSED', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_ERROR']).toContain(err.code);
      await waitFor(() => pool.openConnections === 0 && backend!.sockets.size === 0, 3000, 'the idle session closed');
    } finally {
      await pool.destroy();
    }
  });

  it('does not keep the pool from closing', async () => {
    backend = await rawH2Backend(strike);
    const pool = new Http2Upstream(backend.address, { ...options, keepAliveTimeoutMs: 60_000 });
    try {
      await failedRequest(pool);
      let closed = false;
      void pool.close().then(() => {
        closed = true;
      });
      await waitFor(() => closed && backend!.sockets.size === 0, 3000, 'the pool closed');
    } finally {
      await pool.destroy();
    }
  });
});

describe('an HTTP/2 backend that closes its connection without answering', () => {
  it('costs the client a 502, not an empty 200', async () => {
    backend = await rawH2Backend((socket) => socket.end());
    const t = await startTestNode();
    try {
      t.apply({
        pools: { web: { algorithm: 'round_robin', protocol: 'h2c', backends: [{ id: 'b', address: backend.address, weight: 1, state: 'active' }] } },
        routes: { all: { match: {}, pools: [{ pool: 'web', weight: 1 }] } },
      });
      const reply = await call(t.node.proxyUrl, '/');
      expect(reply.status).toBe(502);
    } finally {
      await t.node.stop();
    }
  });
});

describe('an HTTP/2 pool closed as a response ends, with a malformed frame behind the response', () => {
  it('does not abort the process (Node 20), and closes', async () => {
    // The response's end runs inside nghttp2's callback; a pool closed in its continuation used to
    // destroy the session right there, and the SETTINGS of the wrong length behind it tripped
    // nghttp2's assert (SIGABRT). Found by the http2-upstream fuzz target.
    backend = await rawH2Backend((socket) =>
      socket.write(
        Buffer.concat([
          frame(FRAME.HEADERS, 0x4, 1, Buffer.from([0x88])),
          frame(FRAME.DATA, 0x1, 1, Buffer.from('hi')),
          frame(FRAME.SETTINGS, 0, 0, Buffer.from([1])),
        ]),
      ),
    );
    const pool = new Http2Upstream(backend.address, options);
    try {
      const closed = await new Promise<Promise<void>>((resolve, reject) => {
        pool.dispatch(
          { path: '/', method: 'GET', headers: ['host', 'b'], body: null },
          {
            onConnect: () => {},
            onHeaders: () => true,
            onData: () => true,
            onComplete: () => resolve(pool.close()),
            onError: reject,
          },
        );
      });
      await closed;
      await waitFor(() => backend!.sockets.size === 0, 3000, 'the backend connection closed');
    } finally {
      await pool.destroy();
    }
  });
});
