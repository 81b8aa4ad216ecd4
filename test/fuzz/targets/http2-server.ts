/**
 * The data plane's client-facing HTTP/2 (packages/data-plane/src/server/http2-server.ts and
 * http2-exchange.ts, behind an h2c listener's preface sniff) from client frames over a real
 * loopback connection. nghttp2 parses the frames; what is under test is everything our code does
 * with what it reports: sessions handed over, streams turned into requests (pseudo-headers, Host,
 * cookies, framing), bodies read and paused, responses held, trailers, resets, FIN, idle limits.
 *
 * An input is:
 *
 *   [mode byte] [ops…]
 *
 * The target always opens with the connection preface and, unless the mode says not to, an empty
 * SETTINGS frame. The mode's other bits pick how the application behind the server answers. The
 * ops are the HTTP/2 script language of support/h2-script.ts, with FIELDS below as its field
 * table. A script that has not hung up by its end waits briefly for the streams to finish and then
 * half-closes, so every input settles.
 *
 * Besides crashes and hangs it fails an input when: the server's bytes do not open with SETTINGS
 * or hold a frame of an unknown type; it sends HEADERS or DATA on a stream the client never opened, or a PUSH_PROMISE; the
 * application is handed a request on a stream the client never opened; or a session or a stream
 * outlives its connection in the server's books.
 */
import { connect, type AddressInfo } from 'node:net';
import { frame } from '../../../packages/data-plane/test/h2-frames.js';
import type { ProxyRequest, ProxyResponse } from '../../../packages/data-plane/src/proxy/exchange.js';
import type { Http2ClientRequest } from '../../../packages/data-plane/src/server/http2-exchange.js';
import { Http1Server } from '../../../packages/data-plane/src/server/http1-server.js';
import { HTTP2_PREFACE, Http2Sessions } from '../../../packages/data-plane/src/server/http2-server.js';
import { coarseClock } from '../../../packages/data-plane/src/upstream/connection-sweeper.js';
import type { FuzzTarget } from '../engine/types.js';
import { serve } from '../support/application.js';
import { compileScript, FRAME } from '../support/h2-script.js';

const MODE = {
  READ_BODY: 1,
  LATER: 2,
  TRAILERS: 4,
  DESTROY_SOME: 8,
  LARGE: 16,
  ECHO_HEADERS: 32,
  NO_BODY: 64,
  NO_SETTINGS: 128,
} as const;

/** Literal fields a built HEADERS frame picks from: what a request needs, and what HTTP/2 forbids. */
const FIELDS: readonly (readonly [string, string])[] = [
  [':method', 'GET'],
  [':method', 'POST'],
  [':method', 'HEAD'],
  [':method', 'CONNECT'],
  [':path', '/'],
  [':path', '/a?b=c'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':authority', 'a.example'],
  ['host', 'a.example'],
  ['host', 'b.example'],
  ['cookie', 'a=1'],
  ['cookie', 'b=2'],
  ['content-length', '5'],
  ['content-length', '0'],
  ['te', 'trailers'],
  ['te', 'gzip'],
  ['content-type', 'application/grpc'],
  ['grpc-timeout', '1S'],
  ['grpc-timeout', '99999999n'],
  ['connection', 'close'],
  ['transfer-encoding', 'chunked'],
  ['x-a', '1'],
  ['X-Upper', '1'],
  ['x-b', ''],
  ['x-c', 'a\r\nb'],
  [':protocol', 'websocket'],
  ['upgrade', 'h2c'],
  [':status', '200'],
  ['x-long', 'v'.repeat(300)],
  ['', 'empty-name'],
  [':path', ''],
  ['expect', '100-continue'],
  ['keep-alive', '1'],
  [':method', 'OPTIONS'],
  [':path', '*'],
  ['x-a', '2'],
  ['content-type', 'text/plain'],
];

let server: Http1Server;
let sessions: Http2Sessions;
let port = 0;
let mode = 0;
/** Streams the client opened (a HEADERS frame, valid or not) during the current input. */
const opened = new Set<number>();
/** Requests the application was handed during the current input. */
let seen = 0;
const LARGE_BODY = Buffer.alloc(96 * 1024, 0x61);

function answer(req: ProxyRequest, res: ProxyResponse): void {
  const n = ++seen;
  if (res.destroyed) return;
  if (mode & MODE.DESTROY_SOME && n % 3 === 0) {
    res.destroy();
    return;
  }
  const head = ['x-n', String(n), 'connection', 'keep-alive', 'X-Mixed', 'a', 'x-mixed', 'b', 'content-type', 'a', 'content-type', 'b'];
  // A backend may send back what the client sent it, any field: the response side must cope.
  if (mode & MODE.ECHO_HEADERS) head.push(...req.rawHeaders);
  res.writeHead(200, head);
  if (mode & MODE.TRAILERS) res.passTrailers?.(['grpc-status', '0', 'x-t', String(n), 'te', 'x']);
  if (mode & MODE.NO_BODY) {
    res.end();
    return;
  }
  const body = mode & MODE.LARGE ? LARGE_BODY : Buffer.from(`${req.method} ${req.url} ${JSON.stringify(req.headers)}`);
  res.write(body.subarray(0, body.length >> 1));
  res.end(body.subarray(body.length >> 1));
}

function onRequest(req: ProxyRequest, res: ProxyResponse): void {
  const id = (req as Http2ClientRequest).stream.id;
  if (id === undefined || !opened.has(id)) throw new Error(`a request on stream ${id}, which the client never opened`);
  serve(req, res, { readBody: (mode & MODE.READ_BODY) !== 0, later: (mode & MODE.LATER) !== 0 }, answer);
}

interface ServerFrame {
  type: number;
  stream: number;
}

/** The whole frames in what the server wrote (a server's preface is its SETTINGS frame). */
function serverFrames(bytes: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (at + 9 <= bytes.length) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    const type = bytes[at + 3]!;
    // The proxy sends no extension frames (ALTSVC, ORIGIN): anything past CONTINUATION is garbage.
    if (type > FRAME.CONTINUATION) throw new Error(`the server sent a frame of unknown type ${type}`);
    frames.push({ type, stream: bytes.readUInt32BE(at + 5) & 0x7fffffff });
    at += 9 + length;
  }
  if (frames.length > 0 && frames[0]!.type !== FRAME.SETTINGS) throw new Error(`the server's first frame is type ${frames[0]!.type}, not SETTINGS`);
  return frames;
}

interface Books {
  sessions: { size: number };
  open: Set<unknown>;
}

function openStreams(): number {
  return (sessions as unknown as Books).open.size;
}

function books(): { connections: number; handshaking: number } {
  const s = server as unknown as { connections: Set<unknown>; handshaking: Set<unknown> };
  return { connections: s.connections.size, handshaking: s.handshaking.size };
}

/**
 * Two liveness intervals pass at once: a session whose client left while nghttp2 had stopped
 * reading (node 20, after a connection error) is found by its unanswered PING, not by a FIN. The
 * clock is jumped rather than waited for, so such an input costs milliseconds, not ticks.
 */
function passTime(): void {
  const now = coarseClock();
  sessions.sweep(now + 3_600_000);
  sessions.sweep(now + 7_200_000);
}

async function settle(socket: { destroyed: boolean }): Promise<void> {
  // Let the streams finish (answers written, bodies read) before the client goes; a stream waiting
  // for a body the script never ends is cut by the FIN that follows.
  for (let i = 0; i < 20 && openStreams() > 0 && !socket.destroyed; i++) await new Promise((r) => setTimeout(r, 1));
}

export const target: FuzzTarget = {
  name: 'http2-server',
  coverageFilter: (url) =>
    url.includes('/packages/data-plane/src/server/http2') ||
    url.includes('/packages/data-plane/src/server/preface-sniff') ||
    url.includes('/packages/data-plane/src/http2/'),
  timeoutMs: 3000,
  dictionary: [
    '\x11\x05\x01\x05\x00\x04\x06\x08\x16', // built HEADERS, stream 1, END_STREAM: GET / http a.example x-a
    '\x11\x04\x03\x05\x01\x05\x06\x08\x0d', // built HEADERS, stream 3: POST /a?b=c http a.example content-length 5
    '\x00\x01\x03\x05hello', // DATA stream 3, END_STREAM, 5 bytes
    '\x00\x00\x03\x02hi', // DATA stream 3
    '\x03\x00\x01\x04\x00\x00\x00\x08', // RST_STREAM stream 1, CANCEL
    '\x08\x00\x00\x04\x00\x01\x00\x00', // WINDOW_UPDATE connection +65536
    '\x08\x00\x01\x04\x00\x01\x00\x00', // WINDOW_UPDATE stream 1
    '\x04\x00\x00\x06\x00\x04\x00\x00\x00\x00', // SETTINGS INITIAL_WINDOW_SIZE 0
    '\x04\x01\x00\x00', // SETTINGS ACK
    '\x06\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00', // PING
    '\x07\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00', // GOAWAY NO_ERROR
    '\x09\x04\x01\x01\x82', // CONTINUATION END_HEADERS stream 1, :method GET indexed
    '\x02\x00\x01\x05\x00\x00\x00\x00\x10', // PRIORITY
    '\xfd',
    '\xfe',
    '\xfb',
  ],
  async setup() {
    sessions = new Http2Sessions(
      {
        maxConcurrentStreams: 8,
        maxHeaderListSize: 8192,
        maxHeaderListPairs: 40,
        streamWindowBytes: 65_535,
        connectionWindowBytes: 128 * 1024,
        maxSessionMemoryMb: 4,
        idleTimeoutMs: 2000,
        streamIdleTimeoutMs: 2000,
        pingIntervalMs: 1000,
      },
      onRequest,
    );
    server = new Http1Server(
      { maxHeaderSize: 8192, headersTimeoutMs: 2000, requestTimeoutMs: 2500, keepAliveTimeoutMs: 2000 },
      () => {
        throw new Error('an HTTP/2 connection reached the HTTP/1.1 side');
      },
      50,
      { http2: { sessions, h2c: true } },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  },
  async teardown() {
    sessions.closeAll();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  },
  async run(data) {
    mode = data.length > 0 ? data[0]! : 0;
    seen = 0;
    opened.clear();
    const opening = mode & MODE.NO_SETTINGS ? HTTP2_PREFACE : Buffer.concat([HTTP2_PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]);
    const steps = compileScript(data.subarray(1), FIELDS, (stream) => opened.add(stream));
    const received: Buffer[] = [];
    let fastForward: NodeJS.Timeout | undefined;
    const clientGone = () => {
      fastForward ??= setTimeout(passTime, 20);
    };
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => received.push(d));
      socket.on('close', () => resolve());
      socket.on('connect', async () => {
        socket.write(opening);
        for (const step of steps) {
          if (socket.destroyed) break;
          if (step === 'pause') await new Promise((r) => setImmediate(r));
          else if (step === 'fin') {
            socket.end();
            clientGone();
            return;
          } else if (step === 'rst') {
            socket.destroy();
            clientGone();
            return;
          } else socket.write(step);
        }
        await settle(socket);
        if (!socket.destroyed) socket.end();
        clientGone();
      });
    });
    // The server's side closes with its socket; give it the turns it needs.
    for (let i = 0; i < 500 && (sessions.size > 0 || openStreams() > 0 || books().handshaking > 0); i++) await new Promise((r) => setTimeout(r, 1));
    clearTimeout(fastForward);
    if (sessions.size > 0) throw new Error('a session outlived its connection');
    if (openStreams() > 0) throw new Error(`${openStreams()} streams outlived their connection`);
    const { connections, handshaking } = books();
    if (connections > 0 || handshaking > 0) throw new Error('a connection outlived its socket in the listener');
    // A connection destroyed on either side may stop mid-frame: the frames before that are checked.
    for (const f of serverFrames(Buffer.concat(received))) {
      if (f.type === FRAME.PUSH_PROMISE) throw new Error('the server pushed, with push disabled');
      if ((f.type === FRAME.HEADERS || f.type === FRAME.DATA) && !opened.has(f.stream))
        throw new Error(`the server sent frame type ${f.type} on stream ${f.stream}, which the client never opened`);
    }
    if (seen > opened.size) throw new Error(`${seen} requests answered for ${opened.size} streams opened`);
  },
};
