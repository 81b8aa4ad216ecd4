/**
 * A behavioural self-test of raw TCP handles (raw-tcp.ts), run once when the module is first
 * imported (before the data plane serves): a connection over loopback, accepted as a handle the
 * way the L4 listener accepts, that carries 3 MiB each way — enough that writes wait for the
 * kernel and reads switch buffers; half of it goes as a latin1 string, as request heads do — with
 * back-pressure, half-close in both directions, byte counts and addresses checked. Then one
 * accepted as the HTTP/1.1 server accepts it (reads into the shared buffer) answers with a writev
 * of three buffers and is handed over as a net.Socket, as an upgrade is, which echoes what follows.
 * A shape probe would pass handles whose behaviour changed; this fails them, and the L4 proxy, the
 * HTTP/1.1 server and the backend connections then use net.Socket, saying so in one log line (main.ts).
 */
import net, { type Server } from 'node:net';
import type { ReadBuffer } from '../upstream/read-buffers.js';
import { acceptsOnFastPath, createListenerServer } from './accepted-sockets.js';
import { RawTcp, rawTcpBindingProblem } from './raw-tcp.js';
import type { TcpEnd, TcpEndEvents, TcpPeer } from './tcp-end.js';

export interface RawTcpSelfTest {
  readonly ok: boolean;
  /** Why raw handles are not used (when !ok). */
  readonly reason?: string;
}

const SIZE = 3 * 1024 * 1024;
const DEADLINE_MS = 5000;

/** Events that keep track of one end: what it read (checked against `expected`), its FIN, its own FIN's completion. */
class Recorder implements TcpEndEvents {
  received = 0;
  ended = false;
  finished = false;
  constructor(
    private readonly end: TcpEnd,
    private readonly expected: Buffer,
    private readonly fail: (reason: string) => void,
    private readonly changed: () => void,
    /** The end bytes read are echoed to (the server echoes to itself), or none. */
    private readonly echo: TcpEnd | undefined,
  ) {}
  onRead(data: Buffer, buffer: ReadBuffer | undefined): void {
    if (!data.equals(this.expected.subarray(this.received, this.received + data.length))) this.fail(`bytes ${this.received}… arrived changed`);
    this.received += data.length;
    // Echoed as a view of the read buffer: a write that waits holds it, and reads move to another.
    if (this.echo !== undefined && !this.echo.write(data, buffer)) this.end.pause();
    this.changed();
  }
  onEnd(): void {
    this.ended = true;
    this.echo?.end();
    this.changed();
  }
  onDrain(): void {
    this.end.resume();
  }
  onFinished(): void {
    this.finished = true;
    this.changed();
  }
  onError(code: string): void {
    this.fail(`a connection failed: ${code}`);
  }
}

async function run(): Promise<RawTcpSelfTest> {
  if (rawTcpBindingProblem !== undefined) return { ok: false, reason: rawTcpBindingProblem };
  const data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  let server: Server | undefined;
  const ends: TcpEnd[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<RawTcpSelfTest>((resolve) => {
      const fail = (reason: string): void => resolve({ ok: false, reason });
      timer = setTimeout(() => fail(`a loopback connection did not finish within ${DEADLINE_MS} ms`), DEADLINE_MS);
      let client: RawTcp | undefined;
      let clientSide: Recorder | undefined;
      let serverSide: Recorder | undefined;
      let accepted: RawTcp | undefined;
      /** The client's address as the accepted end names it, read at accept (after both FINs it has none). */
      let peer: TcpPeer | undefined;
      const check = (): void => {
        if (clientSide === undefined || serverSide === undefined || client === undefined || accepted === undefined) return;
        if (!(clientSide.ended && clientSide.finished && serverSide.ended && serverSide.finished)) return;
        if (clientSide.received !== SIZE || serverSide.received !== SIZE)
          return fail(`${serverSide.received} and ${clientSide.received} bytes arrived of ${SIZE}`);
        if (client.bytesWritten !== SIZE || client.bytesRead !== SIZE || accepted.bytesRead !== SIZE || accepted.bytesWritten !== SIZE)
          return fail('byte counts are off');
        const local = client.local();
        if (local === undefined || peer === undefined || local.port !== peer.port || peer.address !== '127.0.0.1')
          return fail("the accepted end does not name the client's address");
        resolve({ ok: true });
      };
      const onAccept = (handle: unknown): void => {
        accepted = RawTcp.accepted(handle);
        peer = accepted.peer();
        ends.push(accepted);
        serverSide = new Recorder(accepted, data, fail, check, accepted);
        accepted.start(serverSide);
      };
      const s = createListenerServer(() => fail('the listener accepted a net.Socket, not a handle'), onAccept);
      server = s;
      s.on('error', (err) => fail(`cannot listen on loopback: ${err.message}`));
      s.listen(0, '127.0.0.1', () => {
        if (!acceptsOnFastPath(s)) return fail("the listener's accept could not be replaced");
        const address = s.address();
        if (address === null || typeof address === 'string') return fail('the listener has no port');
        // Connected as backend connections are (keep-alive probes, recycled buffers from the first read).
        const c = RawTcp.connect(
          '127.0.0.1',
          address.port,
          4,
          (status) => {
            if (status !== 0) return fail(`cannot connect over loopback (${status})`);
            clientSide = new Recorder(c, data, fail, check, undefined);
            c.start(clientSide);
            // Two large writes the kernel cannot take at once — a latin1 string (a request head) and
            // a buffer — then half-close: the FIN must wait for both.
            c.writeLatin1(data.toString('latin1', 0, SIZE / 2));
            c.write(data.subarray(SIZE / 2));
            c.end();
          },
          { keepAliveMs: 60_000, recycledReads: true },
        );
        client = c;
        ends.push(c);
      });
    });
  } catch (err) {
    return { ok: false, reason: `the self-test threw: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    for (const end of ends) end.close();
    server?.close();
  }
}

/** Bytes a client sends as its request, then (to the socket made of the handle) after the hand-over. */
const REQUEST = 'GET / HTTP/1.1\r\n\r\n';
const AFTER = 'after the hand-over';

/** The HTTP/1.1 server's use: shared-buffer reads, a writev, and toSocket(). */
async function runHandOver(): Promise<RawTcpSelfTest> {
  // More than loopback's socket buffers hold while the client does not read (4 MiB by default): the
  // writev waits, and its callback runs from libuv's completion.
  const body = Buffer.alloc(SIZE * 2, 'b');
  const head = Buffer.from('head:');
  const tail = Buffer.from(':tail');
  const answerLength = head.length + body.length + tail.length;
  let server: Server | undefined;
  let client: net.Socket | undefined;
  let accepted: RawTcp | undefined;
  let handedOver: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<RawTcpSelfTest>((resolve) => {
      const fail = (reason: string): void => resolve({ ok: false, reason });
      timer = setTimeout(() => fail(`a handed-over connection did not finish within ${DEADLINE_MS} ms`), DEADLINE_MS);
      let request = '';
      let written = false;
      const onAccept = (handle: unknown): void => {
        const end = RawTcp.accepted(handle, { sharedReads: true });
        accepted = end;
        end.start({
          onRead: (data) => {
            request += data.toString('latin1');
            if (request.length < REQUEST.length) return;
            if (request !== REQUEST) return fail('the request arrived changed');
            end.writev([head, body, tail], () => (written = true));
            // Only now does the client read: until then the writev had only the sockets' buffers.
            client?.resume();
            const socket = end.toSocket();
            handedOver = socket;
            socket.on('error', (err) => fail(`the handed-over socket failed: ${err.message}`));
            socket.on('end', () => socket.end());
            socket.on('data', (chunk: Buffer) => socket.write(chunk));
            socket.resume();
          },
          onEnd: () => fail('the FIN went to the handle, not the socket it was handed over as'),
          onDrain: () => {},
          onFinished: () => {},
          onError: (code) => fail(`an accepted connection failed: ${code}`),
        });
      };
      const s = createListenerServer(() => fail('the listener accepted a net.Socket, not a handle'), onAccept);
      server = s;
      s.on('error', (err) => fail(`cannot listen on loopback: ${err.message}`));
      s.listen(0, '127.0.0.1', () => {
        const address = s.address();
        if (address === null || typeof address === 'string') return fail('the listener has no port');
        const c = net.connect(address.port, '127.0.0.1', () => c.write(REQUEST));
        client = c;
        c.pause();
        const parts = [head, body, tail];
        let bytes = 0;
        let echoed = '';
        c.on('error', (err) => fail(`the client failed: ${err.message}`));
        c.on('data', (chunk: Buffer) => {
          // Each stretch of the chunk is compared with the part of the answer it falls in.
          const before = bytes;
          let at = 0;
          for (let p = 0, start = 0; p < parts.length && at < chunk.length; start += parts[p]!.length, p++) {
            const part = parts[p]!;
            if (bytes >= start + part.length) continue;
            const n = Math.min(chunk.length - at, start + part.length - bytes);
            if (!chunk.subarray(at, at + n).equals(part.subarray(bytes - start, bytes - start + n))) return fail('the writev arrived changed');
            at += n;
            bytes += n;
          }
          echoed += chunk.toString('latin1', at);
          if (before < answerLength && bytes === answerLength) c.end(AFTER);
        });
        c.on('end', () => {
          if (bytes < answerLength) return fail('the writev arrived cut short');
          if (echoed !== AFTER) return fail('the handed-over socket did not echo what followed');
          if (!written) return fail("the writev's callback did not run");
          resolve({ ok: true });
        });
      });
    });
  } catch (err) {
    return { ok: false, reason: `the self-test threw: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    client?.destroy();
    handedOver?.destroy();
    accepted?.close();
    server?.close();
  }
}

async function runAll(): Promise<RawTcpSelfTest> {
  const first = await run();
  return first.ok ? runHandOver() : first;
}

/** The self-test's verdict, known once this module is imported. */
export const rawTcp: RawTcpSelfTest = await runAll();

/** How a kind of connection moves bytes (--l4-io, --http-io, --upstream-io). */
export const TCP_IOS = ['handles', 'sockets'] as const;
/** handles: libuv handles driven directly (raw-tcp.ts); sockets: net.Socket. */
export type TcpIo = (typeof TCP_IOS)[number];
/** Handles where they passed this self-test, net.Socket elsewhere. */
export const DEFAULT_TCP_IO: TcpIo = rawTcp.ok ? 'handles' : 'sockets';
