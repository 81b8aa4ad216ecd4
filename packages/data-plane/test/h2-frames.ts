/**
 * A raw HTTP/2 client for hostile-input tests: writes frames byte by byte as a test builds them
 * (HPACK literals without indexing or Huffman, so any name or value goes on the wire as given,
 * upper case and CR/LF included) and records what the server sends back, frame by frame. And a raw
 * h2c backend, for the same on the upstream side.
 */
import net, { type Server, type Socket } from 'node:net';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
export function hpackInteger(value: number, prefixBits: number, first = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function literal(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7)), bytes]);
}

/** A header block of literal fields without indexing, new names (RFC 7541 §6.2.2). */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), literal(name), literal(value)]));
}

export function rstStream(stream: number, code = 8 /* CANCEL */): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, stream, payload);
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export class RawH2 {
  readonly frames: ReceivedFrame[] = [];
  closed = false;
  /** Acknowledge the server's PINGs, as a real client does; false plays a client that stopped answering. */
  answerPings = true;
  private buffer = Buffer.alloc(0);
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  /** Connects and sends the preface with empty SETTINGS. */
  static connect(port: number): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
        resolve(new RawH2(socket));
      });
      socket.once('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 9) {
      const length = this.buffer.readUIntBE(0, 3);
      if (this.buffer.length < 9 + length) return;
      const f: ReceivedFrame = {
        type: this.buffer[3]!,
        flags: this.buffer[4]!,
        stream: this.buffer.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffer.subarray(9, 9 + length),
      };
      this.buffer = this.buffer.subarray(9 + length);
      // Acknowledge the server's SETTINGS, as a real client does.
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0 && !this.socket.destroyed) this.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (f.type === FRAME.PING && (f.flags & FLAG.ACK) === 0 && this.answerPings && !this.socket.destroyed)
        this.socket.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
      this.frames.push(f);
    }
  }

  write(bytes: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** HEADERS for a request on `stream` (with END_HEADERS; END_STREAM unless `body` follows). */
  request(stream: number, fields: ReadonlyArray<readonly [string, string]>, endStream = true): void {
    this.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), stream, headerBlock(fields)));
  }

  /** The server's GOAWAY error code, if it sent one. */
  goawayCode(): number | undefined {
    const g = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return g === undefined ? undefined : g.payload.readUInt32BE(4);
  }

  /** The RST_STREAM error code the server sent for `stream`, if any. */
  resetCode(stream: number): number | undefined {
    const r = this.frames.find((f) => f.type === FRAME.RST_STREAM && f.stream === stream);
    return r === undefined ? undefined : r.payload.readUInt32BE(0);
  }

  /** Whether a response HEADERS frame came for `stream`. */
  answered(stream: number): boolean {
    return this.frames.some((f) => f.type === FRAME.HEADERS && f.stream === stream);
  }

  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The request pseudo-headers of a GET for `path` (add fields after). */
export function get(path: string, authority = 'localhost'): Array<[string, string]> {
  return [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
  ];
}

/** Whether `bytes`, read as whole frames from their start, hold one of `type` (a partial last frame is not looked at). */
export function hasFrame(bytes: Buffer, type: number): boolean {
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) if (bytes[at + 3] === type) return true;
  return false;
}

export interface RawH2Backend {
  readonly server: Server;
  /** `127.0.0.1:port`. */
  readonly address: string;
  /** Its connections still open. */
  readonly sockets: ReadonlySet<Socket>;
}

/**
 * A raw h2c backend: on each connection its SETTINGS (unless `settings()` says not) and an ACK of
 * the client's, then, once the client's first HEADERS has come whole, `reply(socket)`: whatever
 * bytes the test wants a backend to send.
 */
export async function rawH2Backend(reply: (socket: Socket) => void, settings: () => boolean = () => true): Promise<RawH2Backend> {
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(settings() ? Buffer.concat([frame(FRAME.SETTINGS, 0, 0), frame(FRAME.SETTINGS, FLAG.ACK, 0)]) : frame(FRAME.SETTINGS, FLAG.ACK, 0));
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      if (!hasFrame(seen.subarray(PREFACE.length), FRAME.HEADERS)) return;
      socket.off('data', onData);
      reply(socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as { port: number }).port}`, sockets };
}
