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
import type { Socket } from 'node:net';
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
import { connectPlain } from '../runtime/plain-connect.js';
import { readIntoBuffers } from '../runtime/socket-reads.js';
import { SocketReadBuffers } from '../upstream/read-buffers.js';
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

/** Backend addresses parsed once (validation has checked them), not per connection. */
const parsedAddresses = new Map<string, HostPort | string>();

function hostPortOf(address: string): HostPort | string {
  let parsed = parsedAddresses.get(address);
  if (parsed === undefined) {
    if (parsedAddresses.size >= 10_000) parsedAddresses.clear();
    parsed = parseHostPort(address);
    parsedAddresses.set(address, parsed);
  }
  return parsed;
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
  private upstream: Socket | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  /** What the backend's socket reads into (recycled once the client has written it). */
  private readonly upstreamReads = new SocketReadBuffers();
  /** What the client's socket reads into, once it reads through readIntoBuffers. */
  private readonly clientReads = new SocketReadBuffers();
  private connects = 0;
  private readonly tried: BackendRuntime[] = [];
  private clientClosed = false;
  private upstreamClosed = false;
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
  /** The socket's peer address, read at accept only for the access log (reading it is a system call). */
  private readonly peer: string | undefined;

  constructor(
    private readonly host: SessionHost,
    private readonly client: Socket,
  ) {
    const settings = host.settings;
    // The access log names the client after its socket has closed, when the address is gone.
    this.peer = host.accessLog === undefined ? undefined : client.remoteAddress;
    this.proxyHeaderDone = settings.trustedSources === undefined;
    this.helloDeadline = this.startedAt + settings.helloTimeoutMs;
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
    if (this.proxyHeaderDone && !settings.passthrough) {
      this.routeAndConnect();
      return;
    }
    client.on('data', this.onHelloData);
    client.on('end', this.onHelloEnd);
  }

  /** The client's address as balancers hash it and PROXY headers carry it. */
  private readonly clientAddress = (): string | undefined => {
    const a = this.addresses?.sourceAddress ?? this.peer ?? this.client.remoteAddress;
    return a === undefined ? undefined : unmapIPv4(a);
  };

  private readonly onHelloData = (chunk: Buffer): void => {
    let data = this.preamble === undefined ? chunk : Buffer.concat([this.preamble, chunk]);
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
    this.client.off('data', this.onHelloData);
    this.client.off('end', this.onHelloEnd);
    this.client.pause();
    this.routeAndConnect();
  };

  /** The client gave up (FIN) before its PROXY header or ClientHello was whole. */
  private readonly onHelloEnd = (): void => {
    this.close('closed');
  };

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
    const parsed = hostPortOf(backend.address);
    if (typeof parsed === 'string') return this.connectFailed('connect');
    const upstream = connectPlain({
      host: parsed.host,
      port: parsed.port,
      allowHalfOpen: true,
      onread: { buffer: this.upstreamReads.next, callback: this.onUpstreamRead },
    });
    this.upstream = upstream;
    upstream.on('error', this.onUpstreamError);
    upstream.on('close', this.onUpstreamClose);
    upstream.once('connect', this.onUpstreamConnect);
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

  /** Forgets the current upstream socket (a failed connect): its events no longer reach the session. */
  private dropUpstream(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const upstream = this.upstream;
    if (upstream === undefined) return;
    this.upstream = undefined;
    upstream.off('error', this.onUpstreamError);
    upstream.off('close', this.onUpstreamClose);
    upstream.off('connect', this.onUpstreamConnect);
    upstream.on('error', ignore);
    upstream.destroy();
  }

  private readonly onUpstreamConnect = (): void => {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const upstream = this.upstream!;
    const client = this.client;
    this.phase = Phase.Piping;
    this.backendStats!.active++;
    this.backendStats!.connections++;
    const version = this.target!.pool.settings.proxyProtocol;
    upstream.cork();
    if (version !== undefined) {
      const addresses = this.addresses ?? {
        sourceAddress: client.remoteAddress ?? '',
        sourcePort: client.remotePort ?? 0,
        destinationAddress: client.localAddress ?? '',
        destinationPort: client.localPort ?? 0,
      };
      upstream.write(proxyProtocolHeader(version, addresses));
    }
    if (this.preamble !== undefined) upstream.write(this.preamble);
    this.preamble = undefined;
    upstream.uncork();
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    client.on('drain', this.onClientDrain);
    upstream.on('end', this.onUpstreamEnd);
    upstream.on('drain', this.onUpstreamDrain);
    client.resume();
  };

  private readonly onClientData = (chunk: Buffer): void => {
    if (!this.upstream!.write(chunk)) return void this.client.pause();
    // A client that sends goes on reading into recycled buffers (where the socket allows it): from
    // its first bytes on, not from its accept, so an idle connection holds no read buffer. Not
    // while paused: reads through onread would not wait for the backend to drain.
    if (this.client.readableLength === 0 && readIntoBuffers(this.client, this.clientReads.next, this.onClientRead)) this.client.off('data', this.onClientData);
  };

  /** A client read, passed to the backend as a view of its buffer, held until written. */
  private readonly onClientRead = (nread: number): void => {
    if (this.phase !== Phase.Piping) return;
    if (!this.clientReads.writeTo(this.upstream!, nread)) this.client.pause();
  };

  private readonly onUpstreamDrain = (): void => {
    this.client.resume();
  };

  private readonly onClientEnd = (): void => {
    this.upstream!.end();
  };

  /** onread's callback: the bytes go to the client as a view of the read buffer, held until written. */
  private readonly onUpstreamRead = (nread: number): boolean => {
    if (this.phase !== Phase.Piping) return true;
    if (!this.upstreamReads.writeTo(this.client, nread)) this.upstream!.pause();
    return true;
  };

  private readonly onClientDrain = (): void => {
    this.upstream?.resume();
  };

  private readonly onUpstreamEnd = (): void => {
    this.client.end();
  };

  private readonly onUpstreamError = (err: Error & { code?: string }): void => {
    if (this.phase === Phase.Connecting) {
      this.connectFailed('connect');
      return;
    }
    // A backend that resets or breaks a piped session: passive health hears of it.
    this.backendError = err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'other';
    this.close('backend-error');
  };

  private readonly onUpstreamClose = (): void => {
    this.upstreamClosed = true;
    // Closed cleanly both ways (its FIN passed on, ours sent): the client side finishes on its own.
    // Otherwise (destroyed) nothing more can flow to it, so the client goes too.
    const u = this.upstream!;
    if (!(u.readableEnded && u.writableFinished)) this.close(this.end);
    this.finishIfDone();
  };

  private readonly onClientError = (): void => {
    this.close('client-error');
  };

  private readonly onClientClose = (): void => {
    this.clientClosed = true;
    const c = this.client;
    if (this.phase !== Phase.Piping || !(c.readableEnded && c.writableFinished)) this.close(this.end);
    this.finishIfDone();
  };

  /** Closes before any backend took the connection, counting why. */
  private refuse(reason: L4Refusal): void {
    if (this.phase === Phase.Closed) return;
    this.host.stats.refused[reason]++;
    this.close(reason);
  }

  /** Ends the session now: both sockets destroyed (what they buffered is dropped). */
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
      this.upstreamClosed = true;
    } else if (this.upstream === undefined) this.upstreamClosed = true;
    else this.upstream.destroy();
    this.client.destroy();
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
    if (!this.clientClosed || !this.upstreamClosed || this.finished) return;
    this.finished = true;
    this.phase = Phase.Closed;
    this.upstreamReads.close();
    this.clientReads.close();
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

function ignore(): void {}
