/**
 * The data plane's HTTP/2 upstream client (packages/data-plane/src/upstream/http2-upstream.ts, an
 * h2c pool) from backend frames over a real loopback connection. nghttp2 parses them; what is under
 * test is what the pool does with what it reports: sessions opened, kept, refused and let go,
 * streams turned into one ending each (a response or an error), back-pressure, trailers, timeouts.
 *
 * An input is:
 *
 *   [mode byte] [ops…]
 *
 * The backend answers the client's preface with SETTINGS (unless the mode says not to) and a
 * SETTINGS ACK, waits for the first request's HEADERS, then plays the ops: the HTTP/2 script
 * language of support/h2-script.ts, with FIELDS below as its field table. The mode's other bits pick
 * what the proxy side does: send a body, send two requests at once, read the body slowly, give up
 * on a request after its head.
 *
 * Besides crashes and hangs it fails an input when: a request ends other than exactly once
 * (onComplete or onError), or hears a body or an end before its head; the pool does not close (its
 * close() must resolve once its streams have settled, whatever the backend did); or a connection
 * outlives the pool.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setSweepInterval } from '../../../packages/data-plane/src/upstream/connection-sweeper.js';
import { Http2Upstream } from '../../../packages/data-plane/src/upstream/http2-upstream.js';
import type { UpstreamHandler } from '../../../packages/data-plane/src/upstream/upstream.js';
import { type RawH2Backend, rawH2Backend } from '../../../packages/data-plane/test/h2-frames.js';
import type { FuzzTarget } from '../engine/types.js';
import { compileScript, type Step } from '../support/h2-script.js';

const MODE = {
  BODY: 1,
  TWO: 2,
  SLOW_READER: 4,
  ABORT_AFTER_HEAD: 8,
  NO_SETTINGS: 16,
} as const;

/** Literal fields a built HEADERS frame picks from: what a response needs, and what HTTP/2 forbids. */
const FIELDS: readonly (readonly [string, string])[] = [
  [':status', '200'],
  [':status', '100'],
  [':status', '204'],
  [':status', '304'],
  [':status', '999'],
  [':status', 'abc'],
  ['content-length', '5'],
  ['content-length', '0'],
  ['grpc-status', '0'],
  ['grpc-message', 'x'],
  ['content-type', 'application/grpc'],
  ['connection', 'close'],
  ['transfer-encoding', 'chunked'],
  ['x-a', '1'],
  ['X-Upper', '1'],
  ['x-c', 'a\r\nb'],
  [':path', '/'],
  ['set-cookie', 'a=1'],
  ['set-cookie', 'b=2'],
  ['te', 'trailers'],
  ['', 'empty-name'],
  ['x-long', 'v'.repeat(300)],
];

/** Headers and body timeouts of every request (ms), on the 5 ms sweeper tick setup() sets. */
const TIMEOUT_MS = 20;

let backend: RawH2Backend;
/** The current input's backend script and mode. */
let steps: Step[] = [];
let mode = 0;

async function play(socket: Socket): Promise<void> {
  for (const step of steps) {
    if (socket.destroyed) return;
    if (step === 'pause') await new Promise((r) => setImmediate(r));
    else if (step === 'fin') return void socket.end();
    else if (step === 'rst') return void socket.destroy();
    else socket.write(step);
  }
}

/** One request through the pool; resolves when it has ended, and checks it ended once, in order. */
function request(pool: Http2Upstream, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let head = false;
    let ended = false;
    let abort: ((err?: Error) => void) | undefined;
    let resume: (() => void) | undefined;
    const end = (what: string) => {
      if (ended) reject(new Error(`request ${n} ended twice (${what})`));
      ended = true;
      resolve();
    };
    const handler: UpstreamHandler = {
      onConnect: (a) => {
        abort = a;
      },
      onHeaders: (_status, _raw, resumeReading) => {
        if (head) reject(new Error(`request ${n} got two heads`));
        if (ended) reject(new Error(`request ${n} got a head after its end`));
        head = true;
        resume = resumeReading;
        if (mode & MODE.ABORT_AFTER_HEAD) setImmediate(() => abort?.());
        if (mode & MODE.SLOW_READER) setTimeout(resumeReading, 2);
        return true;
      },
      onData: () => {
        if (!head || ended) reject(new Error(`request ${n} got body bytes ${ended ? 'after its end' : 'before its head'}`));
        if ((mode & MODE.SLOW_READER) === 0) return true;
        // A slow reader, not a stopped one: time the proxy holds a body paused is not the
        // backend's silence (the body timeout does not run), so a reader that never resumed
        // would hold its request until its client gave up, which here nobody does.
        if (resume !== undefined) setTimeout(resume, 2);
        return false;
      },
      onComplete: () => {
        if (!head) reject(new Error(`request ${n} completed without a head`));
        end('complete');
      },
      onError: () => end('error'),
    };
    const body = mode & MODE.BODY ? Readable.from([Buffer.from('hello'), Buffer.from(' world')]) : null;
    pool.dispatch(
      { path: `/r${n}`, method: body === null ? 'GET' : 'POST', headers: ['host', 'backend'], body, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS },
      handler,
    );
  });
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const target: FuzzTarget = {
  name: 'http2-upstream',
  coverageFilter: (url) => url.includes('/packages/data-plane/src/upstream/http2-upstream') || url.includes('/packages/data-plane/src/http2/'),
  timeoutMs: 3000,
  dictionary: [
    '\x11\x04\x01\x02\x00\x06', // built HEADERS, stream 1: :status 200, content-length 5
    '\x11\x05\x01\x01\x00', // built HEADERS, stream 1, END_STREAM: :status 200
    '\x00\x01\x01\x05hello', // DATA stream 1, END_STREAM, 5 bytes
    '\x00\x00\x01\x02hi', // DATA stream 1
    '\x11\x05\x01\x02\x08\x09', // trailers on stream 1: grpc-status, grpc-message
    '\x03\x00\x01\x04\x00\x00\x00\x07', // RST_STREAM stream 1, REFUSED_STREAM
    '\x07\x00\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00', // GOAWAY last stream 1, NO_ERROR
    '\x07\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00', // GOAWAY last stream 0
    '\x08\x00\x00\x04\x00\x01\x00\x00', // WINDOW_UPDATE connection
    '\x04\x00\x00\x06\x00\x03\x00\x00\x00\x01', // SETTINGS MAX_CONCURRENT_STREAMS 1
    '\x06\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00', // PING
    '\x05\x04\x01\x05\x00\x00\x00\x02\x82', // PUSH_PROMISE (push is off)
    '\x09\x04\x01\x01\x88', // CONTINUATION END_HEADERS stream 1, :status 200 indexed
    '\xfd',
    '\xfe',
    '\xfb',
  ],
  async setup() {
    // Most mutated scripts never finish a response, so their requests end on a timeout: on a 5 ms
    // tick with 20 ms timeouts that takes about 25 ms, not the 100–200 ms of the default tick.
    setSweepInterval(5);
    backend = await rawH2Backend(
      (socket) => void play(socket),
      () => (mode & MODE.NO_SETTINGS) === 0,
    );
  },
  async teardown() {
    setSweepInterval();
    for (const s of backend.sockets) s.destroy();
    await new Promise<void>((resolve) => backend.server.close(() => resolve()));
  },
  async run(data) {
    mode = data.length > 0 ? data[0]! : 0;
    steps = compileScript(data.subarray(1), FIELDS);
    const pool = new Http2Upstream(backend.address, {
      connectTimeoutMs: 500,
      headersTimeoutMs: TIMEOUT_MS,
      bodyTimeoutMs: TIMEOUT_MS,
      keepAliveTimeoutMs: 100,
      maxStreamsPerConnection: 4,
    });
    try {
      const requests = [request(pool, 1)];
      if (mode & MODE.TWO) requests.push(request(pool, 2));
      await within(Promise.all(requests), 1500, 'a request never ended');
      await within(pool.close(), 1000, 'the pool did not close after its requests ended');
    } finally {
      await pool.destroy();
    }
    const sockets = backend.sockets;
    for (let i = 0; i < 200 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 1));
    if (sockets.size > 0) {
      for (const s of sockets) s.destroy();
      throw new Error('a backend connection outlived the pool');
    }
  },
};
