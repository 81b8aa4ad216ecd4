/**
 * Differential tests of the data plane's HTTP/1.1 engines: the same mutated inputs through two
 * implementations, and what comes out compared.
 *
 * - Client side: the same client bytes through a node on the built-in server and a node on
 *   node:http's server (both on the built-in upstream client). What reaches the backend (each
 *   request's method, target, framing and body) and what reaches the client (each final
 *   response's status and body) must be the same.
 * - Backend side: the same backend bytes through a node on the built-in upstream client and a
 *   node on undici (both on the built-in server). What reaches the client must be the same.
 *
 * Where the two differ by design, the difference is described by a rule with its reason
 * (EXPECTED_*): a difference no rule explains fails, and so does a rule that explained nothing.
 */
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AFTER_HEAD, Http1Parser } from '../src/http1/llhttp.js';
import { startTestNode, type TestNode } from './helpers.js';
import { generator, mutate } from './mutations.js';

/** What a client made of the bytes it received: each final response, then how the stream ended. */
function clientView(bytes: Buffer, methods: readonly string[]): string[] {
  const out: string[] = [];
  let status = 0;
  let body: Buffer[] = [];
  const parser = new Http1Parser('response', {
    onMessageBegin() {
      body = [];
    },
    onHead(_major, _minor, _headers, _method, _url, s) {
      status = s;
      return s >= 200 && methods[out.length] === 'HEAD' ? AFTER_HEAD.NO_BODY : AFTER_HEAD.BODY;
    },
    onBody(chunk) {
      body.push(chunk);
    },
    onMessageComplete() {
      if (status >= 200) out.push(`${status} ${Buffer.concat(body).toString('latin1')}`);
    },
  });
  const r = parser.execute(bytes);
  const end = typeof r !== 'number' ? `unparsable (${r.code})` : parser.finish() === undefined ? 'end' : 'cut';
  parser.close();
  out.push(end);
  return out;
}

/**
 * The requests in `data` as the servers' parser (llhttp, strict) reads them, up to the first error:
 * how many there are, and their methods (a HEAD request's answer has no body).
 */
function parseRequests(data: Buffer): string[] {
  const methods: string[] = [];
  let method = '';
  const parser = new Http1Parser('request', {
    onMessageBegin() {},
    onHead(_major, _minor, _headers, m) {
      method = m;
      return AFTER_HEAD.BODY;
    },
    onBody() {},
    onMessageComplete() {
      methods.push(method);
    },
  });
  parser.execute(data);
  parser.close();
  return methods;
}

/** Final responses complete in `bytes` so far. */
function countFinal(bytes: Buffer, methods: readonly string[]): number {
  return clientView(bytes, methods).length - 1;
}

/**
 * Sends `data` on a new connection to `port` and waits until the node has answered every request
 * in it (or closed); then half-closes, and resolves with everything received once the node closes.
 * Waiting first keeps what is compared to framing: an early half-close would abandon pipelined
 * requests, and the servers dispatch pipelined requests with different eagerness.
 */
function exchange(port: number, data: Buffer, methods: readonly string[]): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ended = false;
    const socket: Socket = connect(port, '127.0.0.1', () => {
      socket.write(data);
      check();
    });
    const end = () => {
      if (ended) return;
      ended = true;
      socket.end();
    };
    const check = () => {
      if (countFinal(Buffer.concat(chunks), methods) >= methods.length) end();
    };
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      check();
    });
    socket.on('error', () => {});
    // A request the parser could not finish waits for bytes that never come: give up on it.
    const patience = setTimeout(end, 1_500);
    const timer = setTimeout(() => socket.destroy(), 4_000);
    socket.on('close', () => {
      clearTimeout(patience);
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

function proxyPort(node: TestNode): number {
  return Number(new URL(node.node.proxyUrl).port);
}

/** A backend that records what reaches it, as framing sees it, and answers each request with its order number. */
async function recordingBackend(): Promise<{ address: string; log: string[]; server: Server }> {
  const log: string[] = [];
  const server = createHttpServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on('error', () => {});
    req.on('end', () => {
      const framing = req.headers['transfer-encoding'] !== undefined ? `te:${req.headers['transfer-encoding']}` : `cl:${req.headers['content-length'] ?? '-'}`;
      log.push(`${req.method} ${req.url} ${framing} ${bytes} ${hash.digest('hex').slice(0, 12)}`);
      const body = `r${log.length}`;
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, log, server };
}

function simpleConfig(address: string): unknown {
  return { pools: { web: { backends: [{ id: 'b', address }], retry: { attempts: 1 } } }, routes: { all: { match: {}, pools: [{ pool: 'web' }] } } };
}

/** Whether a backend's answer frames its own end (as the clients' parser reads it), so that its connection can stay open after it. */
function endsItself(answer: Buffer): boolean {
  let final = false;
  let ended = false;
  const parser = new Http1Parser('response', {
    onMessageBegin() {},
    onHead(_major, _minor, _headers, _method, _url, status) {
      final = status >= 200;
      return AFTER_HEAD.BODY;
    },
    onBody() {},
    onMessageComplete() {
      if (final) ended = true;
    },
  });
  parser.execute(answer);
  parser.close();
  return ended;
}

/** A difference by design: why, and which inputs and outcomes it covers. */
interface ExpectedDifference {
  readonly why: string;
  matches(input: string, ours: readonly string[], theirs: readonly string[]): boolean;
}

/** Checks one input's outcomes: '' when they agree or a rule explains the difference (which is then marked used). */
function judge(rules: readonly ExpectedDifference[], used: Set<ExpectedDifference>, input: string, ours: string[], theirs: string[]): string {
  if (JSON.stringify(ours) === JSON.stringify(theirs)) return '';
  const rule = rules.find((r) => r.matches(input, ours, theirs));
  if (rule === undefined) return `${JSON.stringify(input)}\n  ours:   ${JSON.stringify(ours)}\n  theirs: ${JSON.stringify(theirs)}`;
  used.add(rule);
  return '';
}

/** Where the built-in server and node:http differ by design. None so far. */
const EXPECTED_SERVER_DIFFERENCES: readonly ExpectedDifference[] = [];

describe('differential: the built-in server against node:http', () => {
  let native: TestNode;
  let node: TestNode;
  let nativeBackend: Awaited<ReturnType<typeof recordingBackend>>;
  let nodeBackend: Awaited<ReturnType<typeof recordingBackend>>;

  beforeAll(async () => {
    [nativeBackend, nodeBackend] = await Promise.all([recordingBackend(), recordingBackend()]);
    native = await startTestNode({ proxy: { server: 'native' }, upstream: { client: 'native' } });
    node = await startTestNode({ proxy: { server: 'node' }, upstream: { client: 'native' } });
    native.apply(simpleConfig(nativeBackend.address));
    node.apply(simpleConfig(nodeBackend.address));
  });

  afterAll(async () => {
    await Promise.all([native.node.stop(), node.node.stop()]);
    for (const b of [nativeBackend, nodeBackend]) {
      b.server.closeAllConnections();
      b.server.close();
    }
  });

  it('forwards the same requests and answers the same, for 400 mutated client streams', async () => {
    const r = generator(2026);
    const seeds = [
      'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
      'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
      'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: t\r\n\r\n',
      'GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
      'GET /close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'HEAD /hd HTTP/1.1\r\nHost: a\r\n\r\n',
      'DELETE /d?q=1 HTTP/1.1\r\nHost: a:80\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
    ];
    const differences: string[] = [];
    const used = new Set<ExpectedDifference>();
    for (let i = 0; i < 400; i++) {
      // The seeds as they are first, then mutations of them.
      const data = i < seeds.length ? Buffer.from(seeds[i]!, 'latin1') : mutate(seeds[r(seeds.length)]!.repeat(1 + r(3)), r, seeds);
      const before = [nativeBackend.log.length, nodeBackend.log.length];
      const methods = parseRequests(data);
      const [a, b] = await Promise.all([exchange(proxyPort(native), data, methods), exchange(proxyPort(node), data, methods)]);
      const sawA = nativeBackend.log.slice(before[0]);
      const sawB = nodeBackend.log.slice(before[1]);
      const ours = [...sawA.map((l) => `backend ${l}`), ...clientView(a, methods)];
      const theirs = [...sawB.map((l) => `backend ${l}`), ...clientView(b, methods)];
      const difference = judge(EXPECTED_SERVER_DIFFERENCES, used, data.toString('latin1'), ours, theirs);
      if (difference !== '') differences.push(`#${i} ${difference}`);
    }
    expect(differences).toEqual([]);
    expect(EXPECTED_SERVER_DIFFERENCES.filter((rule) => !used.has(rule)).map((rule) => rule.why)).toEqual([]);
  });
});

/** Where the built-in upstream client and undici differ by design. */
const EXPECTED_CLIENT_DIFFERENCES: readonly ExpectedDifference[] = [
  {
    why: 'an interim 1xx the request did not ask for: RFC 9110 §15.2 says a client must be able to parse one, and the built-in client passes it over; undici answers 502',
    matches: (input, ours, theirs) => /^HTTP\/1\.[01] 1\d\d /.test(input) && theirs[0]!.startsWith('502 ') && !ours[0]!.startsWith('502 '),
  },
];

describe('differential: the built-in upstream client against undici', () => {
  let native: TestNode;
  let undici: TestNode;
  let backend: ReturnType<typeof createServer>;
  /** The answer to `/1`, whichever node asks, and the sockets waiting for it. */
  let answer = Buffer.alloc(0);
  const held: Socket[] = [];
  const SECOND = 'HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond';

  beforeAll(async () => {
    backend = createServer((socket) => {
      socket.on('error', () => {});
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
          const head = buffered.slice(0, end);
          buffered = buffered.slice(end + 4);
          // `/1` waits for the test to send its mutated answer; `/2` gets a plain one on whatever
          // connection it comes: bytes the first answer left behind must not become the second's.
          if (head.startsWith('GET /1 ')) held.push(socket);
          else socket.write(SECOND);
        }
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
    native = await startTestNode({ proxy: { server: 'native' }, upstream: { client: 'native', headersTimeoutMs: 1_000 } });
    undici = await startTestNode({ proxy: { server: 'native' }, upstream: { client: 'undici', headersTimeoutMs: 1_000 } });
    // One connection to the backend at most: `/2` waits for the one `/1` holds.
    const config = {
      pools: {
        web: {
          backends: [{ id: 'b', address }],
          retry: { attempts: 1 },
          circuitBreaker: { perBackend: { maxConnections: 1, maxPendingRequests: 1024, maxRequests: 1024 } },
        },
      },
      routes: { all: { match: {}, pools: [{ pool: 'web' }] } },
    };
    native.apply(config);
    undici.apply(config);
  });

  afterAll(async () => {
    await Promise.all([native.node.stop(), undici.node.stop()]);
    backend.close();
  });

  /** Polls `check` every millisecond, up to two seconds: the exchanges here take a few milliseconds each. */
  async function until(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 2_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** `/1` and then `/2` on two client connections, `/2` queued behind `/1` until `/1` is answered with `answer`. */
  async function exchangeQueued(node: TestNode): Promise<string[]> {
    const port = proxyPort(node);
    const first = exchange(port, Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), ['GET']);
    await until(() => held.length === 1, '/1 at the backend');
    const second = exchange(port, Buffer.from('GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), ['GET']);
    const pool = node.node.applier.current!.pools.get('web')!.resilience.load;
    await until(() => pool.pending === 1, '/2 queued');
    // An answer that only the close can end (or that is cut short) is followed by the close.
    const socket = held.shift()!;
    if (endsItself(answer)) socket.write(answer);
    else socket.end(answer);
    return [...clientView(await first, ['GET']), ...clientView(await second, ['GET'])];
  }

  it('passes the same answers on to the client, for 200 mutated backend answers, with a request queued behind each', async () => {
    const r = generator(9);
    const seeds = [
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\n\r\nuntil close',
      'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n',
      'HTTP/1.1 301 Moved\r\nlocation: /x\r\ncontent-length: 3\r\n\r\nabc',
      'HTTP/1.1 204 No Content\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled',
    ];
    const differences: string[] = [];
    const used = new Set<ExpectedDifference>();
    for (let i = 0; i < 200; i++) {
      // The seeds as they are first, then mutations of them.
      answer = Buffer.from(i < seeds.length ? seeds[i]! : mutate(seeds[r(seeds.length)]!, r, seeds));
      // One node at a time: the backend answers whoever asks with the current answer.
      const a = await exchangeQueued(native);
      const b = await exchangeQueued(undici);
      const difference = judge(EXPECTED_CLIENT_DIFFERENCES, used, answer.toString('latin1'), a, b);
      if (difference !== '') differences.push(`#${i} ${difference}`);
    }
    expect(differences).toEqual([]);
    expect(EXPECTED_CLIENT_DIFFERENCES.filter((rule) => !used.has(rule)).map((rule) => rule.why)).toEqual([]);
  });
});
