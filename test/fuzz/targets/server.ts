/**
 * The data plane's client-side HTTP/1.1 server (packages/data-plane/src/server) from raw client
 * bytes over a real loopback connection. An input is:
 *
 *   [mode byte] [client script]
 *
 * The mode byte picks how the application behind the server answers (read the body first or not,
 * answer now or a tick later, Content-Length or chunked, a large body that meets back-pressure,
 * destroy every third response), and which server takes the connection: one on libuv handles
 * (raw-tcp.ts, the default) or one on net.Socket (--http-io sockets, and every TLS connection).
 * The script is bytes to send, with control bytes that are never
 * sent: 0xFD waits a tick (so later bytes arrive in another read), 0xFE half-closes (FIN), 0xFB
 * destroys the connection (RST) — a hang-up can fall at any byte. A script that has not hung up by
 * its end half-closes, so every input settles.
 *
 * Besides crashes and hangs (the engine's findings), it fails an input when: the server writes
 * bytes that do not parse as HTTP/1.1 responses; it sends more responses than it received
 * requests (plus one error answer); or a connection outlives its socket in the server's books.
 */
import { connect, type AddressInfo } from 'node:net';
import { AFTER_HEAD, Http1Parser, type Http1Events } from '../../../packages/data-plane/src/http1/llhttp.js';
import type { ProxyRequest, ProxyResponse } from '../../../packages/data-plane/src/proxy/exchange.js';
import { Http1Server } from '../../../packages/data-plane/src/server/http1-server.js';
import type { FuzzTarget } from '../engine/types.js';
import { serve } from '../support/application.js';

const PAUSE = 0xfd;
const FIN = 0xfe;
const RST = 0xfb;

const MODE = {
  READ_BODY: 1,
  LATER: 2,
  CHUNKED: 4,
  DESTROY_SOME: 8,
  LARGE: 16,
  SOCKETS: 32,
} as const;

/** The server on handles, and the one on net.Socket. */
let servers: Http1Server[] = [];
let ports: number[] = [];
let server: Http1Server;
let mode = 0;
/** Requests the application was handed during the current input. */
let seen = 0;
/** Their methods, in order: a HEAD request's answer has no body. */
const methods: string[] = [];
/** Responses it destroyed on purpose (their connection is cut). */
let destroyed = 0;

const LARGE_BODY = Buffer.alloc(96 * 1024, 0x61);

function answer(req: ProxyRequest, res: ProxyResponse): void {
  const n = ++seen;
  if (mode & MODE.DESTROY_SOME && n % 3 === 0) {
    destroyed++;
    res.destroy();
    return;
  }
  const body = mode & MODE.LARGE ? LARGE_BODY : Buffer.from(`${req.method} ${req.url}`);
  res.writeHead(200, mode & MODE.CHUNKED ? ['x-n', String(n)] : ['content-length', String(body.length), 'x-n', String(n)]);
  if (mode & MODE.LARGE) res.write(body.subarray(0, body.length >> 1));
  res.end(mode & MODE.LARGE ? body.subarray(body.length >> 1) : body);
}

function onRequest(req: ProxyRequest, res: ProxyResponse): void {
  methods.push(req.method ?? '');
  serve(req, res, { readBody: (mode & MODE.READ_BODY) !== 0, later: (mode & MODE.LATER) !== 0 }, answer);
}

/** Counts the final responses in what the client received; throws on bytes that are not HTTP/1.1. */
function countResponses(bytes: Buffer): number {
  let complete = 0;
  let final = false;
  const events: Http1Events = {
    onMessageBegin() {},
    onHead(_major, _minor, _headers, _method, _url, status) {
      final = status >= 200;
      // Answers go out in request order; a HEAD request's answer has no body.
      return final && methods[complete] === 'HEAD' ? AFTER_HEAD.NO_BODY : AFTER_HEAD.BODY;
    },
    onBody() {},
    onMessageComplete() {
      if (final) complete++;
    },
  };
  const parser = new Http1Parser('response', events);
  try {
    const r = parser.execute(bytes);
    if (typeof r !== 'number') throw new Error(`the server wrote bytes that are not HTTP/1.1 (${r.code}: ${r.reason}) after ${complete} responses`);
  } finally {
    parser.close();
  }
  return complete;
}

function connections(): number {
  return (server as unknown as { connections: Set<unknown> }).connections.size;
}

export const target: FuzzTarget = {
  name: 'server',
  coverageFilter: (url) => url.includes('/packages/data-plane/src/server/') || url.includes('/packages/data-plane/src/http1/'),
  timeoutMs: 3000,
  dictionary: [
    'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
    'POST /p HTTP/1.1\r\nHost: a\r\n',
    'HTTP/1.0',
    'Host: ',
    'Content-Length: ',
    'Transfer-Encoding: chunked\r\n',
    'Connection: close\r\n',
    'Connection: keep-alive\r\n',
    'Expect: 100-continue\r\n',
    'Upgrade: websocket\r\n',
    '\r\n\r\n',
    '0\r\n\r\n',
    '5\r\nhello\r\n',
    ';ext=1',
    ' HTTP/1.1\r\n',
    'CONNECT',
    'HEAD',
    '\xfd',
    '\xfe',
    '\xfb',
  ],
  async setup() {
    servers = (['handles', 'sockets'] as const).map(
      (io) => new Http1Server({ maxHeaderSize: 8192, headersTimeoutMs: 2000, requestTimeoutMs: 2500, keepAliveTimeoutMs: 2000 }, onRequest, 50, { io }),
    );
    ports = [];
    for (const s of servers) {
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      ports.push((s.address() as AddressInfo).port);
    }
  },
  async teardown() {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  },
  async run(data) {
    mode = data.length > 0 ? data[0]! : 0;
    const which = mode & MODE.SOCKETS ? 1 : 0;
    server = servers[which]!;
    const port = ports[which]!;
    seen = 0;
    destroyed = 0;
    methods.length = 0;
    const script = data.subarray(1);
    const received: Buffer[] = [];
    let hungUp = false;
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => received.push(d));
      socket.on('close', () => resolve());
      socket.on('connect', async () => {
        let from = 0;
        for (let i = 0; i <= script.length && !socket.destroyed; i++) {
          const c = i < script.length ? script[i]! : -1;
          if (c !== PAUSE && c !== FIN && c !== RST && c !== -1) continue;
          if (i > from) socket.write(script.subarray(from, i));
          from = i + 1;
          if (c === PAUSE) await new Promise((r) => setImmediate(r));
          else if (c === FIN || c === -1) {
            socket.end();
            break;
          } else {
            hungUp = true;
            socket.destroy();
            break;
          }
        }
      });
    });
    // The server's side of the connection closes with its socket; give it the turn it needs.
    for (let i = 0; i < 50 && connections() > 0; i++) await new Promise((r) => setTimeout(r, 1));
    if (connections() > 0) throw new Error('a connection outlived its socket in the server');
    const bytes = Buffer.concat(received);
    if (hungUp || destroyed > 0) return; // a cut stream may stop anywhere; what arrived was checked by the client socket
    const responses = countResponses(bytes);
    if (responses > seen + 1) throw new Error(`${responses} responses to ${seen} requests`);
  },
};
