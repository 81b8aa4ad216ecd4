/**
 * One client connection of a tcp or tls-passthrough listener, from accept to close, in a straight
 * line: read what comes before routing (a PROXY header from a trusted balancer, the ClientHello's
 * SNI) within a bounded wait → match a route → pick a backend with the pool's balancer → connect
 * within the pool's connect timeout, on another backend if that fails (never once a byte has gone
 * to a backend) → send the PROXY header the pool wants and the bytes read so far → pipe both ways.
 *
 * Piping is pipe() by hand, with half-close: a FIN from either side is passed on and the other
 * direction keeps flowing (both sockets allow half-open); a write the kernel does not take at once
 * pauses the side that sent it until the other drains. Both sides' bytes are read into recycled
 * buffers (upstream/read-buffers.ts) instead of a fresh 64 KiB one per read, as the HTTP client
 * does: the backend's from its connect, the client's from its first bytes, where
 * runtime/socket-reads.ts can switch its socket. An error on either socket destroys both. Idle
 * time, the hello deadline and draining are checked on the sweeper's tick by the listener
 * (tcp-listener.ts), which costs the data path nothing.
 */
import { isIP } from 'node:net';
import { type HostPort, parseHostPort, POOL_DEFAULTS } from '@lb/shared';
import type { AccessLog } from '../access-log/access-log.js';
import { EMPTY_PICK_CONTEXT } from '../balancer/balancer.js';
import type { BackendRuntime } from '../balancer/host.js';
import type { UpstreamErrorKind } from '../errors.js';
import type { L4BackendStats, L4ListenerStats, L4Refusal, L4Stats } from '../metrics/l4-stats.js';
import { FailureKind } from '../resilience/retry-policy.js';
import { type CompiledBackend, type CompiledRoute, pickBackend, type RouteTarget, type RoutingTable } from '../routing/routing-table.js';
import type { TableSource } from '../routing/table-source.js';
import { scanClientHello } from '../tls/client-hello.js';
import { RawTcp } from '../runtime/raw-tcp.js';
import { SocketEnd } from '../runtime/socket-end.js';
import type { TcpEnd, TcpEndEvents } from '../runtime/tcp-end.js';
import type { ReadBuffer } from '../upstream/read-buffers.js';
import { AddressPickContext } from './address-pick-context.js';
import type { L4ListenerSettings } from './l4-settings.js';
import { proxyProtocolHeader, unmapIPv4 } from './proxy-protocol-header.js';
import { type ProxiedAddresses, scanProxyHeader } from './proxy-protocol-parser.js';
import { admitsConnection, backendFailed, backendServed, sessionClosed, sessionOpened } from './session-accounting.js';

/** What a session reads of its listener; the listener's settings may be replaced while it runs. */
export interface SessionHost {
  readonly name: string;
  readonly settings: L4ListenerSettings;
  readonly tables: TableSource;
  readonly stats: L4ListenerStats;
  readonly l4: L4Stats;
  readonly accessLog: AccessLog | undefined;
  /** Whether backends named by IP address are connected to on raw handles (runtime/raw-tcp.ts). */
  readonly rawHandles: boolean;
  ended(session: TcpSession): void;
}

const enum Phase {
  /** Reading the PROXY header and/or the ClientHello. */
  Hello = 0,
  Connecting = 1,
  Piping = 2,
  Closed = 3,
}

/** Most picks tried to find a backend within its limits (or not tried yet) before giving up. */
const MAX_PICKS = 16;

/** A backend's address as a connect takes it: family 4 or 6 for an IP address, 0 for a name to resolve. */
interface Dial extends HostPort {
  readonly family: 0 | 4 | 6;
}

/** Backend addresses parsed once (validation has checked them), not per connection. */
const parsedAddresses = new Map<string, Dial | string>();

function dialOf(address: string): Dial | string {
  let dial = parsedAddresses.get(address);
  if (dial === undefined) {
    if (parsedAddresses.size >= 10_000) parsedAddresses.clear();
    const parsed = parseHostPort(address);
    dial = typeof parsed === 'string' ? parsed : { ...parsed, family: isIP(parsed.host) as 0 | 4 | 6 };
    parsedAddresses.set(address, dial);
  }
  return dial;
}

/** The two ends of a session, as indexes of its per-end state. */
const CLIENT = 0;
const UPSTREAM = 1;
type Side = typeof CLIENT | typeof UPSTREAM;

/** What one end reports, passed to its session with the end's side. */
class SideEvents implements TcpEndEvents {
  constructor(
    private readonly session: TcpSession,
    private readonly side: Side,
  ) {}
  onRead(data: Buffer, buffer: ReadBuffer | undefined): void {
    this.session.read(this.side, data, buffer);
  }
  onEnd(): void {
    this.session.peerEnded(this.side);
  }
  onDrain(): void {
    this.session.drained(this.side);
  }
  onFinished(): void {
    this.session.finSent(this.side);
  }
  onError(code: string): void {
    this.session.failed(this.side, code);
  }
}

export class TcpSession {
  private phase = Phase.Hello;
  private readonly startedAt = performance.now();
  /** Bytes read before routing: forwarded to the backend first. */
  private preamble: Buffer | undefined;
  private proxyHeaderDone: boolean;
  private addresses: ProxiedAddresses | undefined;
  private sni: string | undefined;
  private route: CompiledRoute | undefined;
  private target: RouteTarget | undefined;
  private backend: CompiledBackend | undefined;
  private backendStats: L4BackendStats | undefined;
  private upstream: TcpEnd | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private clientStarted = false;
  // Per end (CLIENT, UPSTREAM): its peer's FIN was read; our FIN went out; it is closed.
  private readonly eof = [false, false];
  private readonly fin = [false, false];
  private readonly closed = [false, false];
  private connects = 0;
  private readonly tried: BackendRuntime[] = [];
  private finished = false;
  private backendError: UpstreamErrorKind | undefined;
  private end = 'closed';
  /** performance.now() ms: when the hello must be in; when a drained backend's session is cut. */
  private readonly helloDeadline: number;
  private drainDeadline = Number.POSITIVE_INFINITY;
  /** The table whose backends were last checked for this session (draining). */
  private checkedTable: RoutingTable | undefined;
  private lastActivity = this.startedAt;
  private lastBytes = 0;
  // Bytes already added to the counters: [client in, client out, backend in, backend out].
  private readonly counted = [0, 0, 0, 0];
  /** The client's address, read once when first needed (reading it is a system call); null: not yet. */
  private peerAddress: string | undefined | null = null;

  constructor(
    private readonly host: SessionHost,
    private readonly client: TcpEnd,
  ) {
    const settings = host.settings;
    // The access log names the client after its connection has closed, when the address is gone.
    if (host.accessLog !== undefined) this.clientAddress();
    this.proxyHeaderDone = settings.trustedSources === undefined;
    this.helloDeadline = this.startedAt + settings.helloTimeoutMs;
  }

  /**
   * Reads the hello, or routes and connects at once. Apart from the constructor: a session can
   * end inside (no route, say), and its host must know it by then.
   */
  start(): void {
    if (this.proxyHeaderDone && !this.host.settings.passthrough) return this.routeAndConnect();
    this.startClient();
  }

  private startClient(): void {
    if (this.clientStarted) return this.client.resume();
    this.clientStarted = true;
    this.client.start(new SideEvents(this, CLIENT));
  }

  /** The client's address as balancers hash it and PROXY headers carry it. */
  private readonly clientAddress = (): string | undefined => {
    if (this.addresses !== undefined) return unmapIPv4(this.addresses.sourceAddress);
    if (this.peerAddress === null) {
      const a = this.client.peer()?.address;
      this.peerAddress = a === undefined ? undefined : unmapIPv4(a);
    }
    return this.peerAddress;
  };

  /** Bytes from one end: before routing, the client's hello; then to the other end. */
  read(side: Side, data: Buffer, buffer: ReadBuffer | undefined): void {
    if (this.phase === Phase.Piping) {
      const to = side === CLIENT ? this.upstream! : this.client;
      if (!to.write(data, buffer)) (side === CLIENT ? this.client : this.upstream!).pause();
      return;
    }
    if (this.phase === Phase.Hello && side === CLIENT) this.helloData(data);
  }

  private helloData(chunk: Buffer): void {
    // A copy: the read buffer is the client's next read's.
    let data = this.preamble === undefined ? Buffer.from(chunk) : Buffer.concat([this.preamble, chunk]);
    if (!this.proxyHeaderDone) {
      const scan = scanProxyHeader(data);
      if (scan.state === 'more') {
        this.preamble = data;
        return;
      }
      if (scan.state === 'invalid') return this.refuse('bad-proxy-header');
      this.addresses = scan.addresses;
      this.proxyHeaderDone = true;
      data = data.subarray(scan.length);
    }
    if (this.host.settings.passthrough) {
      const scan = scanClientHello(data);
      this.preamble = data;
      if (scan.state === 'more') return;
      this.sni = scan.servername;
    } else this.preamble = data.length > 0 ? data : undefined;
    this.client.pause();
    this.routeAndConnect();
  }

  /** The other end has drained what waited: the end that was paused for it reads again. */
  drained(side: Side): void {
    if (this.phase !== Phase.Piping) return;
    (side === CLIENT ? this.upstream! : this.client).resume();
  }

  /** An end's peer sent its FIN: passed on to the other end (before routing: the client gave up). */
  peerEnded(side: Side): void {
    this.eof[side] = true;
    if (this.phase !== Phase.Piping) return this.close('closed');
    this.passFin(side === CLIENT ? UPSTREAM : CLIENT);
    this.settle();
  }

  /**
   * A FIN for `side`, whose peer has ended. When that end's own peer has ended too and nothing
   * waits to be written, it is closed at once: the close sends the same FIN after what the kernel
   * holds, and saves a shutdown() and its completion (the common end of a short connection: the
   * backend answers and closes, then the client closes).
   */
  private passFin(side: Side): void {
    if (this.closed[side]) return;
    const end = side === CLIENT ? this.client : this.upstream!;
    if (this.eof[side] && !end.writing) return this.closeEnd(side);
    end.end();
  }

  finSent(side: Side): void {
    this.fin[side] = true;
    this.settle();
  }

  /** Ends that are done both ways are closed; the session finishes once both are. */
  private settle(): void {
    if (!this.closed[CLIENT] && this.eof[CLIENT] && this.fin[CLIENT]) this.closeEnd(CLIENT);
    if (!this.closed[UPSTREAM] && this.eof[UPSTREAM] && this.fin[UPSTREAM]) this.closeEnd(UPSTREAM);
    this.finishIfDone();
  }

  private closeEnd(side: Side): void {
    this.closed[side] = true;
    this.fin[side] = true;
    (side === CLIENT ? this.client : this.upstream!).close();
  }

  failed(side: Side, code: string): void {
    if (side === CLIENT) return this.close('client-error');
    // A backend that resets or breaks a piped session: passive health hears of it.
    this.backendError = code === 'ECONNRESET' || code === 'EPIPE' ? 'reset' : 'other';
    this.close('backend-error');
  }

  private routeAndConnect(): void {
    this.phase = Phase.Connecting;
    const table = this.host.tables.current;
    this.checkedTable = table;
    // tls-passthrough: the SNI as a host (exact, then wildcard, then a route without host); tcp: the route without host.
    const route = table?.match(this.sni, '/', undefined, this.host.name);
    if (route === undefined) return this.refuse('no-route');
    this.route = route;
    const picked: { target: RouteTarget | undefined } = { target: undefined };
    const backend = this.choose(route, picked, false);
    if (backend === undefined) return this.refuse('no-backend');
    this.connectTo(picked.target!, backend);
  }

  /**
   * A backend within its limits: the balancer's pick for this client, or (over a limit, or a
   * retry: picked without the client's address, so a hash pool can land elsewhere) another one
   * not tried yet; a tried one only when there is nothing else.
   */
  private choose(route: CompiledRoute, out: { target: RouteTarget | undefined }, retry: boolean): CompiledBackend | undefined {
    let fallback: CompiledBackend | undefined;
    let fallbackTarget: RouteTarget | undefined;
    let picks = 2;
    for (const t of route.targets) picks += t.pool.balancer.size;
    if (picks > MAX_PICKS) picks = MAX_PICKS;
    for (let i = 0; i < picks; i++) {
      const again = retry || i > 0;
      const b = pickBackend(route, out, again ? EMPTY_PICK_CONTEXT : new AddressPickContext(this.clientAddress), again);
      const target = out.target;
      if (b === undefined || target === undefined || b.upstream === undefined) return undefined;
      if (!admitsConnection(target, b.runtime)) continue;
      if (!this.tried.includes(b.runtime)) return b;
      if (fallback === undefined) {
        fallback = b;
        fallbackTarget = target;
      }
    }
    out.target = fallbackTarget;
    return fallback;
  }

  private connectTo(target: RouteTarget, backend: CompiledBackend): void {
    this.target = target;
    this.backend = backend;
    this.backendStats = this.host.l4.backend(target.pool.name, backend.id);
    this.connects++;
    sessionOpened(target, backend);
    const dial = dialOf(backend.address);
    if (typeof dial === 'string') return this.connectFailed('connect');
    let upstream: TcpEnd | undefined;
    const onConnect = (status: number): void => {
      if (upstream === this.upstream) this.upstreamConnected(status);
    };
    upstream =
      this.host.rawHandles && dial.family !== 0
        ? RawTcp.connect(dial.host, dial.port, dial.family, onConnect)
        : SocketEnd.connect(dial.host, dial.port, onConnect);
    this.upstream = upstream;
    this.connectTimer = setTimeout(this.onConnectTimeout, target.pool.resilience.upstream.connectTimeoutMs);
  }

  private readonly onConnectTimeout = (): void => {
    this.connectTimer = undefined;
    this.connectFailed('timeout');
  };

  /** The connect failed: try another backend if the policy says so, else give up on the client. */
  private connectFailed(kind: UpstreamErrorKind): void {
    const target = this.target!;
    const backend = this.backend!;
    this.dropUpstream();
    this.host.stats.connectFailures++;
    this.backendStats!.connectFailures++;
    backendFailed(target, backend, kind);
    sessionClosed(target, backend);
    if (this.phase === Phase.Closed) return;
    const policy = target.policy.retry;
    if ((policy.on & FailureKind.ConnectFailure) !== 0 && this.connects < policy.attempts) {
      if (!this.tried.includes(backend.runtime)) this.tried.push(backend.runtime);
      const picked: { target: RouteTarget | undefined } = { target: undefined };
      const next = this.choose(this.route!, picked, true);
      if (next !== undefined && !this.tried.includes(next.runtime)) {
        backend.runtime.retried++;
        target.pool.resilience.stats.retries++;
        this.connectTo(picked.target!, next);
        return;
      }
    }
    this.backend = undefined;
    this.refuse('connect-failed');
  }

  /** Forgets the current upstream connection (a failed connect): nothing of it reaches the session. */
  private dropUpstream(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const upstream = this.upstream;
    if (upstream === undefined) return;
    this.upstream = undefined;
    upstream.close();
  }

  private upstreamConnected(status: number): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (status !== 0) return this.connectFailed('connect');
    const upstream = this.upstream!;
    this.phase = Phase.Piping;
    this.backendStats!.active++;
    this.backendStats!.connections++;
    upstream.start(new SideEvents(this, UPSTREAM));
    const version = this.target!.pool.settings.proxyProtocol;
    let first = this.preamble;
    this.preamble = undefined;
    if (version !== undefined) {
      const header = proxyProtocolHeader(version, this.addresses ?? this.acceptedAddresses());
      first = first === undefined ? header : Buffer.concat([header, first]);
    }
    // One write: the PROXY header and the bytes read before routing go in one packet.
    if (first !== undefined && !upstream.write(first)) this.client.pause();
    this.startClient();
  }

  /** The connection's own addresses, for a PROXY header when no outer balancer sent one. */
  private acceptedAddresses(): ProxiedAddresses {
    const peer = this.client.peer();
    const local = this.client.local();
    return {
      sourceAddress: peer?.address ?? '',
      sourcePort: peer?.port ?? 0,
      destinationAddress: local?.address ?? '',
      destinationPort: local?.port ?? 0,
    };
  }

  /** Closes before any backend took the connection, counting why. */
  private refuse(reason: L4Refusal): void {
    if (this.phase === Phase.Closed) return;
    this.host.stats.refused[reason]++;
    this.close(reason);
  }

  /** Ends the session now: both connections closed (what they buffered is dropped). */
  close(reason: string): void {
    if (this.phase === Phase.Closed) return;
    const connecting = this.phase === Phase.Connecting && this.upstream !== undefined;
    this.phase = Phase.Closed;
    this.end = reason;
    if (connecting) {
      // The client left (or was cut) while its connect was under way: no verdict on the backend.
      this.dropUpstream();
      sessionClosed(this.target!, this.backend!);
      this.backend = undefined;
    } else this.upstream?.close();
    this.closed[UPSTREAM] = true;
    this.closed[CLIENT] = true;
    this.client.close();
    this.finishIfDone();
  }

  /** Called on the sweeper's tick: bytes into the counters, idle and hello deadlines, draining. */
  sweep(now: number, table: RoutingTable | undefined): void {
    if (this.phase === Phase.Closed) return;
    if (this.phase === Phase.Hello) {
      if (now > this.helloDeadline) this.refuse('hello-timeout');
      return;
    }
    if (this.phase !== Phase.Piping) return;
    const bytes = this.client.bytesRead + this.client.bytesWritten;
    if (bytes !== this.lastBytes) {
      this.lastBytes = bytes;
      this.lastActivity = now;
      this.countBytes();
    } else if (now - this.lastActivity > this.host.settings.idleTimeoutMs) {
      this.close('idle-timeout');
      return;
    }
    if (table !== this.checkedTable) {
      this.checkedTable = table;
      this.drainDeadline = this.stillActive(table)
        ? Number.POSITIVE_INFINITY
        : now + (this.target!.pool.settings.drainTimeoutMs ?? POOL_DEFAULTS.drainTimeoutMs);
    }
    if (now > this.drainDeadline) this.close('drained');
  }

  /** Whether the session's backend still takes new connections in `table` (active, same address). */
  private stillActive(table: RoutingTable | undefined): boolean {
    const b = table?.pools.get(this.target!.pool.name)?.backends.find((x) => x.id === this.backend!.id);
    return b !== undefined && b.upstream !== undefined && b.address === this.backend!.address;
  }

  private countBytes(): void {
    const c = this.client;
    const u = this.upstream;
    const counted = this.counted;
    const stats = this.host.stats;
    stats.bytesIn += c.bytesRead - counted[0]!;
    stats.bytesOut += c.bytesWritten - counted[1]!;
    counted[0] = c.bytesRead;
    counted[1] = c.bytesWritten;
    const b = this.backendStats;
    if (u !== undefined && b !== undefined) {
      b.bytesIn += u.bytesWritten - counted[2]!;
      b.bytesOut += u.bytesRead - counted[3]!;
      counted[2] = u.bytesWritten;
      counted[3] = u.bytesRead;
    }
  }

  private finishIfDone(): void {
    if (!this.closed[CLIENT] || !this.closed[UPSTREAM] || this.finished) return;
    this.finished = true;
    this.phase = Phase.Closed;
    this.countBytes();
    const target = this.target;
    const backend = this.backend;
    if (target !== undefined && backend !== undefined) {
      this.backendStats!.active--;
      sessionClosed(target, backend);
      if (this.backendError !== undefined) backendFailed(target, backend, this.backendError);
      else if (this.end === 'closed') backendServed(backend);
    }
    this.host.ended(this);
    const log = this.host.accessLog;
    if (log !== undefined) {
      log.writeSession({
        listener: this.host.name,
        client: this.clientAddress(),
        ...(this.sni !== undefined ? { sni: this.sni } : {}),
        ...(this.route !== undefined ? { route: this.route.name } : {}),
        ...(target !== undefined && backend !== undefined ? { pool: target.pool.name, backend: backend.id } : {}),
        connects: this.connects,
        durationMs: Math.round((performance.now() - this.startedAt) * 1000) / 1000,
        bytesIn: this.client.bytesRead,
        bytesOut: this.client.bytesWritten,
        end: this.end,
      });
    }
  }
}
