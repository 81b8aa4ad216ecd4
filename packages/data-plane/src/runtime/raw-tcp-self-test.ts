/**
 * A behavioural self-test of raw TCP handles (raw-tcp.ts), run once when the module is first
 * imported (before the data plane serves): a connection over loopback, accepted as a handle the
 * way the L4 listener accepts, that carries 3 MiB each way — enough that writes wait for the
 * kernel and reads switch buffers; half of it goes as a latin1 string, as request heads do — with
 * back-pressure, half-close in both directions, byte counts and addresses checked. A shape probe
 * would pass handles whose behaviour changed; this fails them, and the L4 proxy and the backend
 * connections then use net.Socket, saying so in one log line (main.ts).
 */
import type { Server } from 'node:net';
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

/** The self-test's verdict, known once this module is imported. */
export const rawTcp: RawTcpSelfTest = await run();

/** How a kind of connection moves bytes (--l4-io, --upstream-io). */
export const TCP_IOS = ['handles', 'sockets'] as const;
/** handles: libuv handles driven directly (raw-tcp.ts); sockets: net.Socket. */
export type TcpIo = (typeof TCP_IOS)[number];
/** Handles where they passed this self-test, net.Socket elsewhere. */
export const DEFAULT_TCP_IO: TcpIo = rawTcp.ok ? 'handles' : 'sockets';
