/**
 * The front door (issue 10): what hostile clients and misbehaving backends sent to a data plane,
 * byte for byte, through a whole node (in process, real loopback sockets), on every pairing of
 * client-side server and upstream client. A client must never crash the node nor read another
 * client's response; framing the proxy does not understand is refused, not passed on.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, waitFor, type TestNode, ENGINE_PAIRS } from './helpers.js';
import { rawServer, type RawServer } from './raw-server.js';

/** A raw client: what it received so far, and whether the connection closed. */
interface RawClient {
  socket: Socket;
  received(): string;
  closed(): boolean;
}

const sockets: Socket[] = [];
// An error that escaped to the process would have killed a data plane: each test proves there was none.
const uncaught: Error[] = [];
const onUncaught = (err: Error) => uncaught.push(err);
beforeAll(() => {
  process.on('uncaughtException', onUncaught);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
});
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  expect(uncaught.splice(0).map((e) => e.message)).toEqual([]);
});

function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let data = '';
    let closed = false;
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {});
    socket.on('connect', () => resolve({ socket, received: () => data, closed: () => closed }));
  });
}

/** Sends `bytes` on a new connection and waits until the node closes it; what came back. */
async function exchange(port: number, bytes: string, timeoutMs = 5_000): Promise<string> {
  const c = await rawClient(port);
  c.socket.write(bytes, 'latin1');
  await waitFor(() => c.closed(), timeoutMs, `the node to close after ${JSON.stringify(bytes.slice(0, 60))}`);
  return c.received();
}

/** The status code of the first response in `text`, or 0. */
function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** The payload of a chunked body (what a client makes of it). */
function dechunk(body: string): string {
  let out = '';
  for (let at = 0; ; ) {
    const eol = body.indexOf('\r\n', at);
    const size = Number.parseInt(body.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** A node:http backend that reads every request body whole before it answers, recording what it saw. */
interface RecordingBackend {
  address: string;
  seen: { method: string; url: string; rawHeaders: string[]; httpVersion: string }[];
  /** Requests whose client went away before the body ended. */
  aborted: number;
  close(): Promise<void>;
}

async function recordingBackend(): Promise<RecordingBackend> {
  const state: RecordingBackend = { address: '', seen: [], aborted: 0, close: async () => {} };
  const server: Server = createServer((req: IncomingMessage, res) => {
    state.seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion });
    req.on('aborted', () => state.aborted++);
    req.on('error', () => {});
    req.resume();
    req.on('end', () => res.end(`seen ${req.method} ${req.url}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** A response B owes its own client, and a response A's backend must never hand to B. */
const B_BODY = 'from-b';
const SMUGGLED = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled';

/** Answers that owe one response and send more, each in a single write (the `/evil/<case>` requests). */
const OVERSENDING: Record<string, { method: string; answer: string; status: number }> = {
  'a second full response': { method: 'GET', answer: `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${SMUGGLED}`, status: 200 },
  'a HEAD answer with a body': { method: 'HEAD', answer: `HTTP/1.1 200 OK\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, status: 200 },
  'a 204 with a body': { method: 'GET', answer: `HTTP/1.1 204 No Content\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, status: 204 },
  'a 304 with a body': { method: 'GET', answer: `HTTP/1.1 304 Not Modified\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, status: 304 },
  'an HTTP/1.0 keep-alive answer followed by extra bytes': {
    method: 'GET',
    answer: `HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok${SMUGGLED}`,
    status: 200,
  },
  'a body of 16 KiB or more followed by extra bytes': {
    method: 'GET',
    answer: `HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n${'x'.repeat(20_000)}${SMUGGLED}`,
    status: 200,
  },
};

describe.each(ENGINE_PAIRS)('the front door ($server server, $client upstream client)', ({ server, client }) => {
  let node: TestNode;
  let port: number;
  let backend: RecordingBackend;
  let raw: RawServer;
  /** A's answer, held until B waits in the pool's queue. */
  const held: { socket: Socket; answer: string }[] = [];

  beforeAll(async () => {
    backend = await recordingBackend();
    raw = await rawServer((head, socket) => {
      const path = head.slice(head.indexOf(' ') + 1, head.indexOf(' ', head.indexOf(' ') + 1));
      if (path.startsWith('/evil/')) {
        held.push({ socket, answer: OVERSENDING[decodeURIComponent(path.slice(6))]!.answer });
        return;
      }
      if (path === '/trailer-length') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\nContent-Length: 10\r\n\r\n');
        return;
      }
      if (path === '/bare-lf-chunks') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n');
        return;
      }
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${B_BODY.length}\r\n\r\n${B_BODY}`);
    });
    node = await startTestNode({ upstream: { client }, proxy: { server } });
    node.apply({
      pools: {
        web: { backends: [{ id: 'a', address: backend.address }] },
        // One connection at most, so that a second request waits for the first one's connection.
        raw: {
          backends: [{ id: 'r', address: raw.address }],
          retry: { attempts: 1, on: [], backoffMs: 25, maxBackoffMs: 250, budgetPercent: 20, minRetriesPerSecond: 3 },
          circuitBreaker: {
            maxConnections: 1024,
            maxPendingRequests: 1024,
            maxRequests: 1024,
            perBackend: { maxConnections: 1, maxPendingRequests: 1024, maxRequests: 1024 },
          },
        },
      },
      routes: {
        raw: { match: { host: 'raw.test' }, pools: [{ pool: 'raw', weight: 1 }] },
        all: { match: {}, pools: [{ pool: 'web', weight: 1 }] },
      },
    });
    port = Number(new URL(node.node.proxyUrl).port);
  });

  afterAll(async () => {
    await node.node.stop();
    await backend.close();
    await raw.close();
  });

  /** The node still serves: a plain request gets its answer. */
  async function stillServes(): Promise<void> {
    const text = await exchange(port, 'GET /alive HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statusOf(text)).toBe(200);
    expect(text).toContain('seen GET /alive');
  }

  describe('a client that hangs up mid-request does not crash the node', () => {
    it('Content-Length 100, five bytes of body, then the client closes', async () => {
      const before = backend.aborted;
      const c = await rawClient(port);
      c.socket.write('POST /p1 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhello');
      await waitFor(() => backend.seen.some((s) => s.url === '/p1'), 5_000, 'the backend to get the request');
      c.socket.destroy();
      await waitFor(() => backend.aborted > before, 5_000, 'the upload to be cut at the backend');
      await stillServes();
    });

    it('a chunked body cut after its first chunk, then the client closes', async () => {
      const before = backend.aborted;
      const c = await rawClient(port);
      c.socket.write('POST /p2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await waitFor(() => backend.seen.some((s) => s.url === '/p2'), 5_000, 'the backend to get the request');
      c.socket.destroy();
      await waitFor(() => backend.aborted > before, 5_000, 'the upload to be cut at the backend');
      await stillServes();
    });

    it('a malformed chunk after the request went upstream gets 400, and the node lives on', async () => {
      const before = backend.aborted;
      const c = await rawClient(port);
      c.socket.write('POST /p3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await waitFor(() => backend.seen.some((s) => s.url === '/p3'), 5_000, 'the backend to get the request');
      c.socket.write('ZZ\r\n0\r\n\r\n');
      await waitFor(() => c.closed(), 5_000, 'the node to close the connection');
      expect(statusOf(c.received())).toBe(400);
      await waitFor(() => backend.aborted > before, 5_000, 'the upload to be cut at the backend');
      await stillServes();
    });
  });

  describe('a queued request never receives bytes the backend owed another', () => {
    it.each(Object.keys(OVERSENDING))('%s', async (name) => {
      const evil = OVERSENDING[name]!;
      const a = await rawClient(port);
      a.socket.write(`${evil.method} /evil/${encodeURIComponent(name)} HTTP/1.1\r\nHost: raw.test\r\n\r\n`);
      await waitFor(() => held.length === 1, 5_000, "A's request at the backend");
      const b = await rawClient(port);
      b.socket.write('GET /b HTTP/1.1\r\nHost: raw.test\r\n\r\n');
      // B waits for the pool's only connection, which A holds.
      const table = node.node.applier.current!;
      await waitFor(() => table.pools.get('raw')!.resilience.load.pending === 1, 5_000, 'B queued behind A');
      const { socket, answer } = held.shift()!;
      socket.write(answer, 'latin1');
      await waitFor(() => b.received().includes('\r\n\r\n') && b.received().endsWith(B_BODY), 5_000, "B's answer");
      expect(statusOf(b.received())).toBe(200);
      expect(b.received()).not.toContain('smuggled');
      await waitFor(() => statusOf(a.received()) !== 0, 5_000, "A's answer");
      // undici refuses an answer with more body than its head announced: A then gets a 502 of its own.
      expect([evil.status, 502]).toContain(statusOf(a.received()));
    });
  });

  it('drops header names that look like framing headers with "_" for "-" (as nginx does)', async () => {
    const text = await exchange(
      port,
      'POST /underscore HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent_Length: 3\r\nContent-Length: 5\r\nX_Forwarded_For: 6.6.6.6\r\nConnection: close\r\n\r\nhello',
    );
    expect(statusOf(text)).toBe(200);
    const seen = backend.seen.find((s) => s.url === '/underscore')!;
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names).not.toContain('transfer_encoding');
    expect(names).not.toContain('content_length');
    expect(names).not.toContain('x_forwarded_for');
  });

  it('forwards an HTTP/1.0 request without Host with a Host header (the backend address)', async () => {
    const text = await exchange(port, 'GET /no-host HTTP/1.0\r\n\r\n');
    expect(statusOf(text)).toBe(200);
    const seen = backend.seen.find((s) => s.url === '/no-host')!;
    const hosts = seen.rawHeaders.filter((_, i, all) => i % 2 === 0 && all[i]!.toLowerCase() === 'host').map((_, i) => i);
    expect(hosts).toHaveLength(1);
    expect(seen.rawHeaders[seen.rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === 'host') + 1]).toBe(backend.address);
  });

  it.each(['x@y', 'a,b', 'a b', 'a/b', 'a\\b', ''])('refuses Host %j with 400 and forwards nothing', async (host) => {
    const before = backend.seen.length;
    const text = await exchange(port, `GET /bad-host HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(text)).toBe(400);
    expect(backend.seen.length).toBe(before);
  });

  it('refuses a request with 1,000 headers with 431', async () => {
    const headers = Array.from({ length: 1_000 }, (_, i) => `X-${i}: v\r\n`).join('');
    const text = await exchange(port, `GET /many HTTP/1.1\r\nHost: a\r\n${headers}\r\n`, 5_000);
    expect(statusOf(text)).toBe(431);
    expect(backend.seen.some((s) => s.url === '/many')).toBe(false);
  });

  it('answers a transfer coding it does not implement (gzip, chunked) with 501 instead of dropping it', async () => {
    const text = await exchange(port, 'POST /gzip HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n');
    expect(statusOf(text)).toBe(501);
    expect(backend.seen.some((s) => s.url === '/gzip')).toBe(false);
  });

  it('serves the request before Connection: close and ignores what was pipelined after it', async () => {
    const text = await exchange(port, 'GET /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(statusOf(text)).toBe(200);
    expect(text).toContain('seen GET /first');
    expect(text).not.toContain('/second');
    expect(backend.seen.some((s) => s.url === '/second')).toBe(false);
  });

  // undici (the fallback client) refuses such a response: its parser allows no leniency there.
  const nativeClientIt = client === 'native' ? it : it.fails;
  nativeClientIt('delivers a chunked response whole when its trailers carry a Content-Length', async () => {
    const text = await exchange(port, 'GET /trailer-length HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(text)).toBe(200);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    expect(dechunk(body)).toBe('helloworld');
    // The whole body, its last chunk included: a response cut short would stop before it.
    expect(body.endsWith('0\r\n\r\n')).toBe(true);
  });

  it('answers 502 with a status line when a backend sends bare-LF chunk lines', async () => {
    const text = await exchange(port, 'GET /bare-lf-chunks HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(text)).toBe(502);
  });
});
