/**
 * An L4 session (packages/data-plane/src/l4/tcp-session.ts, on raw libuv handles) between a real
 * client and a real backend over loopback, both driven by the input: what each sends, when each
 * half-closes, resets, stops reading or reads again. What is under test is the session's state
 * machine and raw-tcp.ts under it: half-close both ways, back-pressure, errors on either side.
 *
 * An input is a list of one-byte ops (the low three bits pick the op, the rest its size):
 *   0 client sends (1 + rest × 97) bytes     4 backend sends (1 + rest × 97) bytes
 *   1 client FIN                             5 backend FIN
 *   2 client resets                          6 backend resets
 *   3 client stops / resumes reading         7 a turn of the event loop
 * Each side's bytes are a numbered pattern, so what arrives can be checked.
 *
 * Besides crashes and hangs it fails an input when: either side receives bytes that are not the
 * next ones the other sent (order, loss in the middle, duplication); or, once both sides have
 * gone, the session is still open (it must end and be counted out of the listener).
 */
import net, { type Server, type Socket } from 'node:net';
import { compileRoutingTable } from '../../../packages/data-plane/src/routing/routing-table.js';
import { TcpListener } from '../../../packages/data-plane/src/l4/tcp-listener.js';
import { DataPlaneMetrics } from '../../../packages/data-plane/src/metrics.js';
import type { Upstream } from '../../../packages/data-plane/src/upstream/upstream.js';
import type { FuzzTarget } from '../engine/types.js';

const metrics = new DataPlaneMetrics({ defaultMetrics: false });
let backendServer: Server;
let listener: TcpListener;
let listenerPort = 0;
/** The backend side of the current input's connection, once accepted. */
let backendSide: ((socket: Socket) => void) | undefined;

/** The i-th byte a side sends: numbered, so a gap or a repeat shows. */
function pattern(side: number, from: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (from + i + side * 101) & 0xff;
  return b;
}

/** One side of the exchange: what it sent, what it got, and whether it is gone. */
class Peer {
  sent = 0;
  received = 0;
  gone = false;
  finished = false;
  paused = false;
  constructor(
    readonly socket: Socket,
    private readonly side: number,
    private readonly from: () => number,
  ) {
    socket.on('error', () => (this.gone = true));
    socket.on('close', () => (this.gone = true));
    socket.on('data', (d: Buffer) => {
      const expected = pattern(1 - side, this.received, d.length);
      if (!d.equals(expected)) throw new Error(`side ${side} got bytes ${this.received}… that are not the ones sent`);
      this.received += d.length;
      if (this.received > this.from()) throw new Error(`side ${side} got ${this.received} bytes, more than the ${this.from()} sent`);
    });
  }
  send(n: number): void {
    if (this.gone || this.finished) return;
    this.socket.write(pattern(this.side, this.sent, n));
    this.sent += n;
  }
  fin(): void {
    if (this.gone || this.finished) return;
    this.finished = true;
    this.socket.end();
  }
  reset(): void {
    if (this.gone) return;
    this.gone = true;
    this.socket.resetAndDestroy();
  }
  toggle(): void {
    if (this.gone) return;
    this.paused = !this.paused;
    if (this.paused) this.socket.pause();
    else this.socket.resume();
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

export const target: FuzzTarget = {
  name: 'l4-session',
  coverageFilter: (url) => url.includes('/packages/data-plane/src/l4/') || url.includes('/packages/data-plane/src/runtime/raw-tcp'),
  timeoutMs: 5000,
  async setup(): Promise<void> {
    backendServer = net.createServer({ allowHalfOpen: true }, (s) => backendSide?.(s));
    await new Promise<void>((r) => backendServer.listen(0, '127.0.0.1', r));
    const backendPort = (backendServer.address() as net.AddressInfo).port;
    const upstreams = { acquire: (address: string) => ({ address }) as unknown as Upstream };
    const table = compileRoutingTable(
      {
        version: 1,
        config: {
          pools: { p: { algorithm: 'round_robin', backends: [{ id: 'b', address: `127.0.0.1:${backendPort}`, weight: 1, state: 'active' }] } },
          routes: { r: { listeners: ['tcp'], match: {}, pools: [{ pool: 'p', weight: 1 }] } },
          listeners: { tcp: { port: 1, protocol: 'tcp' } },
        },
      } as Parameters<typeof compileRoutingTable>[0],
      { upstreams, metrics, random: () => 0 },
    );
    listener = new TcpListener(
      'tcp',
      { passthrough: false, idleTimeoutMs: 60_000, maxConnections: 100, helloTimeoutMs: 5000, trustedSources: undefined },
      { tables: { current: table }, l4: metrics.l4, accessLog: undefined, rawHandles: true },
    );
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    listenerPort = (listener.address() as net.AddressInfo).port;
  },
  async teardown(): Promise<void> {
    listener.closeAllConnections();
    await new Promise<void>((r) => listener.close(() => r()));
    await new Promise<void>((r) => backendServer.close(() => r()));
  },
  async run(data: Buffer): Promise<void> {
    const accepted = new Promise<Socket>((resolve) => (backendSide = resolve));
    const clientSocket = net.connect({ host: '127.0.0.1', port: listenerPort, allowHalfOpen: true });
    let backend: Peer | undefined;
    const client: Peer = new Peer(clientSocket, 0, () => backend?.sent ?? 0);
    await new Promise<void>((r) => {
      clientSocket.once('connect', () => r());
      clientSocket.once('error', () => r());
    });
    // The backend connection comes once the session has routed and connected (or never, if the client went first).
    const backendSocket = await Promise.race([accepted, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
    backendSide = undefined;
    if (backendSocket === undefined) throw new Error('the session did not connect to the backend');
    backend = new Peer(backendSocket, 1, () => client.sent);
    for (const op of data) {
      const size = 1 + (op >> 3) * 97;
      switch (op & 7) {
        case 0:
          client.send(size);
          break;
        case 1:
          client.fin();
          break;
        case 2:
          client.reset();
          break;
        case 3:
          client.toggle();
          break;
        case 4:
          backend.send(size);
          break;
        case 5:
          backend.fin();
          break;
        case 6:
          backend.reset();
          break;
        default:
          await turn();
      }
    }
    // Both sides read what is left and go: the session must end, counted out of the listener.
    for (const p of [client, backend]) if (p.paused) p.toggle();
    client.fin();
    backend.fin();
    await waitUntil(() => client.gone || client.socket.readableEnded, 1000);
    client.socket.destroy();
    backend.socket.destroy();
    if (!(await waitUntil(() => listener.stats.active === 0, 2000))) throw new Error(`${listener.stats.active} session(s) still open after both sides went`);
  },
};
