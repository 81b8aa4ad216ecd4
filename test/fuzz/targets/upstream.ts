/**
 * The data plane's upstream HTTP/1.1 client (packages/data-plane/src/upstream) from raw backend
 * bytes, over real loopback connections, with requests queued behind a connection limit so that
 * connections are reused — where one request could receive another's response. An input is:
 *
 *   [requests byte] [flags byte] [backend script]
 *
 * The requests byte sets how many requests go out at once (1–4) and their methods (GET, HEAD,
 * POST with a Content-Length body, POST with a chunked body). The flags byte sets the pool's
 * connection limit (1 or 2) and which request, if any, its client abandons after its head arrives.
 * The script is what the backend sends, per connection and per request on it: 0xFA starts the
 * next connection's part, 0xFC the next request's answer on this connection (played once that
 * request has arrived), 0xFD waits a tick, 0xFE half-closes (FIN), 0xFB resets (RST), 0xFF
 * stands for the id of the request being answered, and 0xF9 n writes n × 512 bytes of `x` (so a
 * short input can send a body large enough to go on as views of the read buffer). A connection whose part ends
 * closes.
 *
 * Besides crashes and hangs it fails an input when a request's handler sees another request's id
 * (a response crossed over), hears anything after its final event, hears two final events, or
 * gets body bytes before a head.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { AFTER_HEAD, Http1Parser } from '../../../packages/data-plane/src/http1/llhttp.js';
import { Http1Pool } from '../../../packages/data-plane/src/upstream/http1-pool.js';
import type { UpstreamHandler } from '../../../packages/data-plane/src/upstream/upstream.js';
import type { FuzzTarget } from '../engine/types.js';

const NEXT_CONNECTION = 0xfa;
const NEXT_ANSWER = 0xfc;
const PAUSE = 0xfd;
const FIN = 0xfe;
const RST = 0xfb;
const ID = 0xff;
const BULK = 0xf9;
const BULK_UNIT = Buffer.alloc(512, 0x78);

let backend: Server;
let address = '';
/** The current input's script, split per connection and then per answer. */
let script: Buffer[][] = [];
let nextConnection = 0;
const sockets = new Set<Socket>();
/** Bumped whenever the backend reads or writes: an input whose exchange stalls is ended by the backend. */
let activity = 0;

/** The id of the request behind a path `/r<i>`, as the answer's bytes carry it. */
function idToken(i: number): Buffer {
  return Buffer.from([ID, 0x30 + i, ID]);
}

/** Plays one answer: bytes, with pauses, and maybe a hang-up. Resolves false once the connection is gone. */
async function play(socket: Socket, part: Buffer, id: number): Promise<boolean> {
  let from = 0;
  for (let i = 0; i <= part.length; i++) {
    const c = i < part.length ? part[i]! : -1;
    if (c !== PAUSE && c !== FIN && c !== RST && c !== ID && c !== BULK && c !== -1) continue;
    if (socket.destroyed) return false;
    activity++;
    if (i > from) socket.write(part.subarray(from, i));
    from = i + 1;
    if (c === ID) socket.write(idToken(id));
    else if (c === BULK) {
      const n = i + 1 < part.length ? part[i + 1]! : 0;
      for (let k = 0; k < n; k++) socket.write(BULK_UNIT);
      i++;
      from = i + 1;
    } else if (c === PAUSE) await new Promise((r) => setImmediate(r));
    else if (c === FIN) {
      socket.end();
      return false;
    } else if (c === RST) {
      socket.destroy();
      return false;
    }
  }
  return !socket.destroyed;
}

function onBackendConnection(socket: Socket): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  const parts = script[nextConnection++];
  if (parts === undefined) {
    socket.end();
    return;
  }
  let answered = 0;
  let queue = Promise.resolve(true);
  // The backend reads requests with the same parser; each complete head gets the next answer.
  const parser = new Http1Parser('request', {
    onMessageBegin() {},
    onHead(_major, _minor, _headers, _method, url) {
      const id = Number(url.slice(2)) || 0;
      const part = parts[answered++];
      queue = queue.then((open) => (open ? (part === undefined ? (socket.end(), false) : play(socket, part, id)) : false));
      // After the last scripted answer, the connection closes.
      if (answered === parts.length) queue = queue.then((open) => (open ? (socket.end(), false) : false));
      return AFTER_HEAD.BODY;
    },
    onBody() {},
    onMessageComplete() {},
  });
  socket.on('data', (d: Buffer) => {
    activity++;
    if (typeof parser.execute(d) !== 'number') socket.destroy();
  });
  socket.on('close', () => parser.close());
}

/** Splits the script: connections by NEXT_CONNECTION, answers by NEXT_ANSWER. */
function split(bytes: Buffer): Buffer[][] {
  const connections: Buffer[][] = [];
  let answers: Buffer[] = [];
  let from = 0;
  for (let i = 0; i <= bytes.length; i++) {
    const c = i < bytes.length ? bytes[i] : NEXT_CONNECTION;
    if (c !== NEXT_CONNECTION && c !== NEXT_ANSWER) continue;
    answers.push(bytes.subarray(from, i));
    from = i + 1;
    if (c === NEXT_CONNECTION) {
      connections.push(answers);
      answers = [];
    }
  }
  return connections;
}

const METHODS = ['GET', 'HEAD', 'POST', 'POST-CHUNKED'] as const;

/** Records what the client tells one request, and checks it says it in a sane order. */
class Watcher implements UpstreamHandler {
  private state: 'waiting' | 'connected' | 'head' | 'done' = 'waiting';
  abort: ((err?: Error) => void) | undefined;
  readonly done: Promise<void>;
  private settle!: () => void;
  problem: string | undefined;

  constructor(
    readonly id: number,
    private readonly abandonAfterHead: boolean,
  ) {
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  private fail(problem: string): void {
    this.problem ??= problem;
  }

  /** Everything the request was given (head, then body), checked for other requests' ids at the end. */
  private received = '';

  private look(): void {
    const text = this.received;
    for (let at = text.indexOf('\xff'); at !== -1 && at + 1 < text.length; at = text.indexOf('\xff', at + 3)) {
      const seenId = text.charCodeAt(at + 1) - 0x30;
      if (seenId !== this.id) this.fail(`request ${this.id} received bytes of request ${seenId}'s answer: ${JSON.stringify(text.slice(0, 200))}`);
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.state === 'done') this.fail(`onConnect after the end of request ${this.id}`);
    this.abort = abort;
    if (this.state === 'waiting') this.state = 'connected';
  }

  onHeaders(status: number, headers: readonly string[], _resume: () => void, statusText: string): boolean {
    if (this.state === 'done') this.fail(`onHeaders after the end of request ${this.id}`);
    if (this.state === 'head') this.fail(`two heads for request ${this.id}`);
    if (status < 200) this.fail(`an interim head (${status}) reached request ${this.id}`);
    this.state = 'head';
    this.received += `${statusText}\n${headers.join('\n')}\n`;
    if (this.abandonAfterHead) this.abort?.();
    return true;
  }

  onData(chunk: Buffer, release?: () => void): boolean {
    if (this.state !== 'head') this.fail(`body bytes before a head (request ${this.id}, ${this.state})`);
    this.received += chunk.toString('latin1');
    release?.();
    return true;
  }

  onComplete(): void {
    if (this.state !== 'head') this.fail(`onComplete without a head (request ${this.id}, ${this.state})`);
    this.end();
  }

  onError(): void {
    if (this.state === 'done') this.fail(`onError after the end of request ${this.id}`);
    this.end();
  }

  private end(): void {
    if (this.state === 'done') this.fail(`two final events for request ${this.id}`);
    this.state = 'done';
    this.look();
    this.settle();
  }
}

export const target: FuzzTarget = {
  name: 'upstream',
  coverageFilter: (url) => url.includes('/packages/data-plane/src/upstream/') || url.includes('/packages/data-plane/src/http1/'),
  timeoutMs: 3000,
  dictionary: [
    'HTTP/1.1 200 OK\r\n',
    'HTTP/1.0 200 OK\r\n',
    'HTTP/1.1 204 No Content\r\n',
    'HTTP/1.1 304 Not Modified\r\n',
    'HTTP/1.1 100 Continue\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\n',
    'Content-Length: ',
    'Transfer-Encoding: chunked\r\n',
    'Connection: close\r\n',
    'Connection: keep-alive\r\n',
    'Keep-Alive: timeout=1\r\n',
    '\r\n\r\n',
    '0\r\n\r\n',
    '3\r\n\xff\r\n',
    'X-Id: \xff\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\xff',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\xff\r\n0\r\n\r\n',
    'Content-Length: 20480\r\n\r\n\xf9(',
    '\xfa',
    '\xfc',
    '\xfd',
    '\xfe',
    '\xfb',
  ],
  async setup() {
    backend = createServer(onBackendConnection);
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
  },
  async teardown() {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  },
  async run(data) {
    const requests = data.length > 0 ? data[0]! : 0;
    const flags = data.length > 1 ? data[1]! : 0;
    script = split(data.subarray(2));
    nextConnection = 0;
    const count = 1 + (requests & 3);
    const pool = new Http1Pool(address, {
      connectTimeoutMs: 1000,
      headersTimeoutMs: 1500,
      bodyTimeoutMs: 1500,
      keepAliveTimeoutMs: 30_000,
      connections: 1 + ((flags >> 2) & 1),
    });
    const abandon = flags & 3; // 0: nobody; 1–3: that request (if it exists)
    const watchers: Watcher[] = [];
    for (let i = 0; i < count; i++) {
      const method = METHODS[(requests >> (2 + 2 * (i % 3))) & 3]!;
      const watcher = new Watcher(i, abandon === i + 1);
      watchers.push(watcher);
      let body: PassThrough | null = null;
      const headers = ['host', 'backend'];
      if (method === 'POST' || method === 'POST-CHUNKED') {
        body = new PassThrough();
        if (method === 'POST') headers.push('content-length', '5');
        body.end('hello');
      }
      pool.dispatch({ path: `/r${i}`, method: method === 'POST-CHUNKED' ? 'POST' : method, headers, body }, watcher);
    }
    // A script can leave both sides waiting (an answer cut short, more answers scripted than
    // requests arrive): once nothing has moved for a while, the backend hangs up, as one would.
    let last = -1;
    const stall = setInterval(() => {
      if (activity !== last) {
        last = activity;
        return;
      }
      for (const socket of sockets) socket.end();
    }, 20);
    await Promise.all(watchers.map((w) => w.done));
    clearInterval(stall);
    await pool.destroy();
    for (const s of sockets) s.destroy();
    for (const w of watchers) if (w.problem !== undefined) throw new Error(w.problem);
  },
};
