/**
 * The built-in upstream client against real loopback servers: raw `net` servers where the test
 * needs to say exactly which bytes come back (framing, interim heads, stale connections), and
 * node:http where an ordinary backend does.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { LEND_MIN } from '../src/upstream/http1-connection.js';
import { freeReadBuffers } from '../src/upstream/read-buffers.js';
import { nativeHttp1 } from '../src/http1/parser-self-test.js';
import { Http1Pool, type Http1PoolOptions } from '../src/upstream/http1-pool.js';
import { RawTcp } from '../src/runtime/raw-tcp.js';
import { rawTcp } from '../src/runtime/raw-tcp-self-test.js';
import { UPSTREAM_ERRORS } from '../src/errors.js';
import type { UpstreamHandler, UpstreamRequest } from '../src/upstream/upstream.js';
import { waitFor } from './helpers.js';
import { rawServer as startRawServer, type RawServer } from './raw-server.js';

const OPTIONS: Http1PoolOptions = { connectTimeoutMs: 2_000, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000, keepAliveTimeoutMs: 30_000 };

interface Outcome {
  status: number;
  statusText: string;
  headers: readonly string[];
  body: Buffer;
  /** onHeaders calls (1xx heads must not reach the handler). */
  heads: number;
}

class RecordingHandler implements UpstreamHandler {
  status = 0;
  statusText = '';
  headers: readonly string[] = [];
  heads = 0;
  chunks: Buffer[] = [];
  abort: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  /** onData answers this (false: pause). */
  accept = true;
  readonly done: Promise<Outcome>;
  private settle!: (o: Outcome) => void;
  private fail!: (e: Error) => void;

  constructor() {
    this.done = new Promise<Outcome>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: readonly string[], resume: () => void, statusText: string): boolean {
    this.heads++;
    this.status = statusCode;
    this.statusText = statusText;
    this.headers = rawHeaders;
    this.resume = resume;
    return true;
  }

  /** Chunks that came as views of a reused read buffer. */
  lent = 0;
  /** When set, each lent chunk is copied and released at once (as a quick client socket would). */
  releaseAtOnce = false;

  onData(chunk: Buffer, release?: () => void): boolean {
    if (release !== undefined) {
      this.lent++;
      if (this.releaseAtOnce) {
        this.chunks.push(Buffer.from(chunk));
        release();
        return this.accept;
      }
    }
    this.chunks.push(chunk);
    return this.accept;
  }

  onComplete(): void {
    this.settle({ status: this.status, statusText: this.statusText, headers: this.headers, body: Buffer.concat(this.chunks), heads: this.heads });
  }

  onError(err: Error): void {
    this.fail(err);
  }
}

function send(pool: Http1Pool, request: Partial<UpstreamRequest> = {}): RecordingHandler {
  const handler = new RecordingHandler();
  pool.dispatch({ path: '/', method: 'GET', headers: ['host', 'backend'], body: null, ...request }, handler);
  return handler;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rawServer(answer: Parameters<typeof startRawServer>[0]): Promise<RawServer> {
  const server = await startRawServer(answer);
  cleanups.push(() => server.close());
  return server;
}

async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<{ address: string; server: HttpServer; connections: () => number }> {
  let connections = 0;
  const server = createHttpServer(handler);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { address: `127.0.0.1:${port}`, server, connections: () => connections };
}

/** Whether the pools of the suite running now put plain connections on libuv handles (--upstream-io). */
let rawHandles = true;

function pool(address: string, options: Partial<Http1PoolOptions> = {}): Http1Pool {
  const p = new Http1Pool(address, { ...OPTIONS, rawHandles, ...options });
  cleanups.push(() => p.destroy());
  return p;
}

const OK = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

// Every case on both ways a plain connection moves bytes: libuv handles (the default) and net.Socket.
describe.each(['handles', 'sockets'] as const)('Http1Pool (the built-in upstream client), connections on %s', (io) => {
  beforeEach(() => {
    rawHandles = io === 'handles';
  });

  it("finds node's native parser on this runtime, and it passes its self-test", () => {
    expect(nativeHttp1()).toEqual({ ok: true });
  });

  it(`connects to a backend named by IP address on ${io}, and to one named by a host name on a socket`, async () => {
    expect(rawTcp).toEqual({ ok: true });
    const connect = vi.spyOn(RawTcp, 'connect');
    try {
      const server = await rawServer((_head, socket) => socket.write(OK('hi')));
      const byAddress = await send(pool(server.address)).done;
      expect(byAddress.body.toString()).toBe('hi');
      expect(connect).toHaveBeenCalledTimes(io === 'handles' ? 1 : 0);
      const byName = await send(pool(server.address.replace('127.0.0.1', 'localhost'))).done;
      expect(byName.body.toString()).toBe('hi');
      expect(connect).toHaveBeenCalledTimes(io === 'handles' ? 1 : 0);
    } finally {
      connect.mockRestore();
    }
  });

  it('reuses one keep-alive connection for requests one after another', async () => {
    const server = await rawServer((_head, socket, n) => socket.write(OK(`reply ${n}`)));
    const p = pool(server.address);
    for (let i = 1; i <= 3; i++) {
      const r = await send(p).done;
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(`reply ${i}`);
    }
    expect(server.connections).toBe(1);
    expect(p.stats).toMatchObject({ connections: 1, idle: 1 });
  });

  it('writes the request line and headers as given, in order', async () => {
    const server = await rawServer((_head, socket) => socket.write(OK('x')));
    const p = pool(server.address);
    await send(p, { method: 'DELETE', path: '/a/b?c=d', headers: ['Host', 'example.test', 'X-Two', '1', 'x-two', '2'] }).done;
    expect(server.received[0]).toBe('DELETE /a/b?c=d HTTP/1.1\r\nHost: example.test\r\nX-Two: 1\r\nx-two: 2\r\n\r\n');
  });

  it('opens a new connection after Connection: close, an HTTP/1.0 answer, or a Keep-Alive timeout too short to use', async () => {
    const answers = [
      OK('closing', 'connection: close\r\n'),
      'HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold',
      OK('short', 'keep-alive: timeout=1\r\n'),
      OK('last'),
    ];
    let i = 0;
    const server = await rawServer((_head, socket) => socket.write(answers[i++]!));
    const p = pool(server.address);
    expect((await send(p).done).body.toString()).toBe('closing');
    expect((await send(p).done).body.toString()).toBe('old');
    expect((await send(p).done).body.toString()).toBe('short');
    expect((await send(p).done).body.toString()).toBe('last');
    expect(server.connections).toBe(4);
  });

  it('reads chunked bodies, bodies that end with the connection, and HEAD answers without a body', async () => {
    const server = await rawServer((head, socket, n) => {
      if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
      else if (n === 1) socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
      else socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    });
    const p = pool(server.address);
    const chunked = await send(p).done;
    expect(chunked.body.toString()).toBe('hello world');
    expect(chunked.headers).toEqual(['transfer-encoding', 'chunked']);
    const head = await send(p, { method: 'HEAD' }).done;
    expect(head.body.length).toBe(0);
    expect(head.headers).toEqual(['content-length', '1000']);
    expect((await send(p).done).body.toString()).toBe('until the end');
    expect(server.connections).toBe(1);
  });

  it("never takes a chunked body's trailers for the next response's headers", async () => {
    let n = 0;
    const server = await rawServer((_head, socket) => {
      socket.write(++n === 1 ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nx-trailer: sneaky\r\n\r\n' : OK('second', 'x-own: 1\r\n'));
    });
    const p = pool(server.address);
    expect((await send(p).done).body.toString()).toBe('hi');
    const second = await send(p).done;
    expect(second.headers).toEqual(['content-length', '6', 'x-own', '1']);
    expect(server.connections).toBe(1);
  });

  it('passes over 1xx interim heads and hands every header over, however many', async () => {
    const many = Array.from({ length: 80 }, (_, i) => `x-h${i}: v${i}\r\n`).join('');
    const server = await rawServer((_head, socket) =>
      socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Made It\r\n${many}content-length: 2\r\n\r\nok`),
    );
    const p = pool(server.address);
    const r = await send(p).done;
    expect(r).toMatchObject({ status: 201, statusText: 'Made It', heads: 1 });
    expect(r.headers.length).toBe(2 * 81);
    expect(r.headers.slice(0, 2)).toEqual(['x-h0', 'v0']);
    expect(r.headers.slice(-2)).toEqual(['content-length', '2']);
    expect(r.body.toString()).toBe('ok');
  });

  it('sends a body of known length as is and one of unknown length chunked', async () => {
    const bodies: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const server = await httpServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        bodies.push({ headers: req.headers, body });
        res.end('thanks');
      });
    });
    const p = pool(server.address);
    await send(p, { method: 'POST', headers: ['host', 'x', 'content-length', '11'], body: Readable.from([Buffer.from('hello '), Buffer.from('world')]) }).done;
    await send(p, { method: 'POST', headers: ['host', 'x'], body: Readable.from([Buffer.from('streamed '), Buffer.from(''), Buffer.from('body')]) }).done;
    expect(bodies[0]).toMatchObject({ body: 'hello world', headers: { 'content-length': '11' } });
    expect(bodies[0]!.headers['transfer-encoding']).toBeUndefined();
    expect(bodies[1]).toMatchObject({ body: 'streamed body', headers: { 'transfer-encoding': 'chunked' } });
    expect(server.connections()).toBe(1);
  });

  it('keeps to the connection limit: a second request waits for the first connection', async () => {
    const held: Socket[] = [];
    const server = await rawServer((_head, socket, n) => {
      if (n === 1) held.push(socket);
      else socket.write(OK('second'));
    });
    const p = pool(server.address, { connections: 1 });
    const first = send(p);
    const second = send(p);
    await waitFor(() => held.length === 1);
    expect(p.stats).toMatchObject({ connections: 1, waiting: 1 });
    held[0]!.write(OK('first'));
    expect((await first.done).body.toString()).toBe('first');
    expect((await second.done).body.toString()).toBe('second');
    expect(server.connections).toBe(1);
  });

  it('fails with the socket error when nothing listens', async () => {
    const server = await rawServer(() => {});
    const address = server.address;
    await server.close();
    const p = pool(address);
    await expect(send(p).done).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(p.stats.connections).toBe(0);
  });

  it('times out waiting for headers, and for a body that stops, with codes of their own', async () => {
    const server = await rawServer((head, socket) => {
      if (head.includes('/stall-body')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart');
    });
    const p = pool(server.address);
    const started = performance.now();
    await expect(send(p, { headersTimeout: 150 }).done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.HEADERS_TIMEOUT });
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    const h = send(p, { path: '/stall-body', bodyTimeout: 150 });
    await expect(h.done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.BODY_TIMEOUT });
    expect(h.status).toBe(200);
    expect(Buffer.concat(h.chunks).toString()).toBe('part');
  });

  it('does not time a body out while the handler holds it paused', async () => {
    const server = await rawServer((_head, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nfirst');
      setTimeout(() => socket.write('!'), 50);
    });
    const p = pool(server.address, { bodyTimeoutMs: 100 });
    const h = new RecordingHandler();
    h.accept = false;
    p.dispatch({ path: '/', method: 'GET', headers: [], body: null }, h);
    await waitFor(() => h.chunks.length === 1);
    // Paused for three body timeouts: the backend is not the one being slow.
    await new Promise((r) => setTimeout(r, 400));
    expect(h.chunks.length).toBe(1);
    h.accept = true;
    h.resume!();
    expect((await h.done).body.toString()).toBe('first!');
  });

  it('reports a backend that closes mid-response, and one that talks nonsense', async () => {
    const server = await rawServer((head, socket) => {
      if (head.includes('/cut')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nonly this');
      else socket.write('SPDY/3 nonsense\r\n\r\n');
    });
    const p = pool(server.address);
    await expect(send(p, { path: '/cut' }).done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.CLOSED });
    const bad = await send(p, { path: '/nonsense' }).done.catch((e: { code: string }) => e);
    expect((bad as { code: string }).code).toMatch(/^HPE_/);
  });

  it('replays an idempotent request once when a reused connection turns out closed; never a POST', async () => {
    // Every connection answers its first request and drops the second unanswered: the race of a
    // backend timing its idle side out just as a request goes out.
    const server = await rawServer((_head, socket, n) => {
      if (n === 1) socket.write(OK('fresh'));
      else socket.destroy();
    });
    const p = pool(server.address);
    await send(p).done;
    expect((await send(p).done).body.toString()).toBe('fresh');
    expect(server.connections).toBe(2);
    await expect(send(p, { method: 'POST', headers: ['content-length', '2'], body: Readable.from([Buffer.from('hi')]) }).done).rejects.toMatchObject({
      code: expect.stringMatching(/ECONNRESET|LB_UPSTREAM_CLOSED|EPIPE/),
    });
    expect(server.connections).toBe(2);
  });

  it('closes an idle connection after its keep-alive time', async () => {
    const server = await rawServer((_head, socket) => socket.write(OK('x')));
    const p = pool(server.address, { keepAliveTimeoutMs: 150 });
    await send(p).done;
    expect(p.stats.idle).toBe(1);
    await waitFor(() => p.stats.connections === 0, 3_000);
  });

  it('stops reading while the handler is full, and goes on when resumed', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const server = await httpServer((_req, res) => {
      res.setHeader('content-length', String(chunk.length * 64));
      let sent = 0;
      const pump = (): void => {
        while (sent < 64) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const p = pool(server.address);
    const h = new RecordingHandler();
    h.accept = false;
    p.dispatch({ path: '/', method: 'GET', headers: ['host', 'x'], body: null }, h);
    await waitFor(() => h.chunks.length > 0);
    const seen = h.chunks.length;
    await new Promise((r) => setTimeout(r, 200));
    // One socket read may still be split into a few body callbacks; nothing more arrives.
    const pausedAt = h.chunks.length;
    expect(pausedAt - seen).toBeLessThan(4);
    expect(Buffer.concat(h.chunks).length).toBeLessThan(chunk.length * 64);
    h.accept = true;
    h.resume!();
    expect((await h.done).body.length).toBe(chunk.length * 64);
  });

  it('aborting a request closes its connection and reports the abort reason', async () => {
    let requests = 0;
    const server = await rawServer((_head, socket) => socket.write(++requests === 1 ? 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome' : OK('whole')));
    const p = pool(server.address);
    const h = send(p);
    await waitFor(() => h.chunks.length === 1);
    const reason = Object.assign(new Error('client left'), { code: 'TEST_ABORT' });
    h.abort!(reason);
    await expect(h.done).rejects.toBe(reason);
    expect(p.stats.connections).toBe(0);
    // A stale abort (kept after its request ended) touches nothing.
    expect((await send(p).done).body.toString()).toBe('whole');
    h.abort!(reason);
    expect(p.stats.connections).toBe(1);
  });

  it('close() lets a request in flight finish, refuses new ones, and resolves when the last connection is gone', async () => {
    const held: Socket[] = [];
    const server = await rawServer((_head, socket) => held.push(socket));
    const p = pool(server.address);
    const inFlight = send(p);
    await waitFor(() => held.length === 1);
    let closed = false;
    const closing = p.close().then(() => (closed = true));
    await expect(send(p).done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.POOL_CLOSED });
    expect(closed).toBe(false);
    held[0]!.write(OK('finished'));
    expect((await inFlight.done).body.toString()).toBe('finished');
    await closing;
    expect(p.stats.connections).toBe(0);
  });

  it('destroy() fails requests in flight and those waiting', async () => {
    const server = await rawServer(() => {});
    const p = pool(server.address, { connections: 1 });
    const a = send(p);
    const b = send(p);
    await waitFor(() => server.received.length === 1);
    await p.destroy();
    await expect(a.done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.POOL_CLOSED });
    await expect(b.done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.POOL_CLOSED });
  });

  it('stops sending a body the backend answered early, and does not reuse that connection', async () => {
    const server = await rawServer((_head, socket) => socket.write('HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\n\r\n'));
    const p = pool(server.address);
    const body = new PassThrough();
    body.write('start of a long body');
    const h = send(p, { method: 'PUT', headers: ['host', 'x'], body });
    expect((await h.done).status).toBe(413);
    // The rest of the client's body flows away unread instead of stalling the client.
    expect(body.isPaused()).toBe(false);
    body.end('more');
    await waitFor(() => p.stats.connections === 0);
  });

  describe('large bodies, read past the parser', () => {
    const pattern = (n: number, seed: number): Buffer => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
      return b;
    };
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

    it('hands over views of reused buffers, byte-exact, and the next response on the connection parses', async () => {
      const sizes = [LEND_MIN, 3 * 1024 * 1024 + 7, 100, LEND_MIN - 1, 1024 * 1024];
      const bodies = sizes.map((n, i) => pattern(n, i));
      const server = await rawServer((_head, socket, n) => {
        const body = bodies[n - 1]!;
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
        socket.write(body);
      });
      const p = pool(server.address);
      for (let i = 0; i < sizes.length; i++) {
        const h = new RecordingHandler();
        h.releaseAtOnce = true;
        p.dispatch({ path: '/', method: 'GET', headers: ['host', 'x'], body: null }, h);
        const r = await h.done;
        expect(r.body.length).toBe(sizes[i]);
        expect(sha(r.body)).toBe(sha(bodies[i]!));
        // Only pieces of LEND_MIN or more come as lent views; shorter bodies as copies.
        expect(h.lent > 0).toBe(sizes[i]! >= LEND_MIN);
      }
      expect(server.connections).toBe(1);
      // Released views and the closed socket's own buffer go back to the free list.
      await p.destroy();
      expect(freeReadBuffers()).toBeGreaterThan(0);
    });

    it('keeps a held view intact: its buffer is not read into again until released', async () => {
      const body = pattern(2 * 1024 * 1024, 9);
      const server = await rawServer((_head, socket) => {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
        socket.write(body);
      });
      const p = pool(server.address);
      // Never released: every view must still hold its own bytes when the body is over.
      const h = send(p);
      const r = await h.done;
      expect(h.lent).toBeGreaterThan(1);
      expect(sha(r.body)).toBe(sha(body));
    });

    it('fails a body cut short of its Content-Length, and drops a connection that sends more than it', async () => {
      const server = await rawServer((head, socket) => {
        const big = Buffer.alloc(LEND_MIN * 2, 120);
        if (head.includes('/short')) socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length + 10}\r\n\r\n`), big]));
        else socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`), big, Buffer.from('EXTRA BYTES')]));
      });
      const p = pool(server.address);
      await expect(send(p, { path: '/short' }).done).rejects.toMatchObject({ code: UPSTREAM_ERRORS.CLOSED });
      const extra = await send(p, { path: '/extra' }).done;
      expect(extra.body.length).toBe(LEND_MIN * 2);
      await waitFor(() => p.stats.connections === 0);
    });
    it('parses answers however the bytes are split across reads', async () => {
      const big = pattern(LEND_MIN + 5_000, 3);
      const answers = [
        Buffer.concat([Buffer.from(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\nx-a: 1\r\n\r\n`), big]),
        Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n'),
        Buffer.from('HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nsmall'),
      ];
      const expected = [big, Buffer.from('wikipedia'), Buffer.from('small')];
      // Cut each answer at these offsets: inside the status line, at the head's CRLFCRLF (both
      // sides of it), inside the body, and one byte before the end.
      const cutsFor = (answer: Buffer): number[] => {
        const headEnd = answer.lastIndexOf('\r\n\r\n', answer.length - (answer === answers[1] ? 12 : 1)) + 4;
        return [...new Set([5, headEnd - 3, headEnd - 1, headEnd, headEnd + 1, Math.floor((headEnd + answer.length) / 2), answer.length - 1])]
          .filter((c) => c > 0 && c < answer.length)
          .sort((a, b) => a - b);
      };
      let index = 0;
      const server = await rawServer((_head, socket) => {
        const answer = answers[index++ % answers.length]!;
        let from = 0;
        const pieces: Buffer[] = [];
        for (const cut of cutsFor(answer)) {
          pieces.push(answer.subarray(from, cut));
          from = cut;
        }
        pieces.push(answer.subarray(from));
        // No Nagle, and a pause between pieces, so that each arrives in a read of its own.
        socket.setNoDelay(true);
        const next = (): void => {
          const piece = pieces.shift();
          if (piece === undefined) return;
          socket.write(piece);
          setTimeout(next, 3);
        };
        next();
      });
      const p = pool(server.address);
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < answers.length; i++) {
          const h = new RecordingHandler();
          h.releaseAtOnce = true;
          p.dispatch({ path: '/', method: 'GET', headers: ['host', 'x'], body: null }, h);
          const r = await h.done;
          expect(sha(r.body)).toBe(sha(expected[i]!));
          expect(r.heads).toBe(1);
        }
      }
      expect(server.connections).toBe(1);
    });
  });
});
