/**
 * A tcp or tls-passthrough listener: a net.Server whose connections become TcpSessions. It is a
 * ProxyListener like the HTTP servers, so the listener set binds, moves and drains it the same
 * way (drainServer: stop accepting, let sessions finish, cut the rest after the grace period).
 *
 * Admission happens before a session exists: over the listener's maxConnections, or (with
 * acceptProxyProtocol) from a source that is not trusted, the connection is closed unread, so no
 * client can name its own address in a PROXY header. While sessions are open the listener rides
 * the upstream sweeper's tick (upstream/connection-sweeper.ts) for their deadlines and byte counts.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { AccessLog } from '../access-log/access-log.js';
import type { L4ListenerStats, L4Stats } from '../metrics/l4-stats.js';
import type { ProxyListener } from '../proxy/proxy-server.js';
import type { TableSource } from '../routing/table-source.js';
import { createListenerServer } from '../runtime/accepted-sockets.js';
import { RawTcp } from '../runtime/raw-tcp.js';
import { SocketEnd } from '../runtime/socket-end.js';
import type { TcpEnd } from '../runtime/tcp-end.js';
import { type Sweepable, unwatch, watch } from '../upstream/connection-sweeper.js';
import { isTrustedSource, type L4ListenerSettings } from './l4-settings.js';
import { type SessionHost, TcpSession } from './tcp-session.js';

export interface TcpListenerDeps {
  readonly tables: TableSource;
  readonly l4: L4Stats;
  readonly accessLog: AccessLog | undefined;
  /**
   * Connections on libuv handles (runtime/raw-tcp.ts) rather than net.Socket: accepted ones, and
   * those to backends named by IP address. Only where the handles passed their self-test.
   */
  readonly rawHandles: boolean;
}

export class TcpListener extends EventEmitter implements ProxyListener, SessionHost, Sweepable {
  private readonly server: Server;
  private readonly sessions = new Set<TcpSession>();
  readonly stats: L4ListenerStats;
  readonly tables: TableSource;
  readonly l4: L4Stats;
  readonly accessLog: AccessLog | undefined;
  readonly rawHandles: boolean;
  /** close() callbacks waiting for the last session (sessions on raw handles are not the server's connections). */
  private whenEmpty: Array<() => void> = [];

  constructor(
    readonly name: string,
    /** Replaced whole by configure(); sessions read it on every tick. */
    public settings: L4ListenerSettings,
    deps: TcpListenerDeps,
  ) {
    super();
    this.tables = deps.tables;
    this.l4 = deps.l4;
    this.accessLog = deps.accessLog;
    this.rawHandles = deps.rawHandles;
    this.stats = deps.l4.listener(name);
    this.server = createListenerServer(this.onConnection, deps.rawHandles ? this.onHandle : undefined);
    this.server.on('error', (err) => this.emit('error', err));
  }

  /** A new snapshot's settings for the same port and protocol. */
  configure(settings: L4ListenerSettings): void {
    this.settings = settings;
  }

  private readonly onConnection = (socket: Socket): void => {
    this.admit(new SocketEnd(socket));
  };

  private readonly onHandle = (handle: unknown): void => {
    this.admit(RawTcp.accepted(handle));
  };

  private admit(client: TcpEnd): void {
    const stats = this.stats;
    stats.accepted++;
    const trusted = this.settings.trustedSources;
    if (this.sessions.size >= this.settings.maxConnections) return this.turnAway(client, 'max-connections');
    if (trusted !== undefined && !isTrustedSource(trusted, client.peer()?.address)) return this.turnAway(client, 'untrusted-source');
    stats.active++;
    const session = new TcpSession(this, client);
    this.sessions.add(session);
    if (this.sessions.size === 1) watch(this);
    session.start();
  }

  /** Closes a connection no session is made for, counting and logging why (an operator sees a refusal in the log as an HTTP client's 503 is seen). */
  private turnAway(client: TcpEnd, reason: 'max-connections' | 'untrusted-source'): void {
    this.stats.refused[reason]++;
    this.accessLog?.writeSession({
      listener: this.name,
      client: client.peer()?.address,
      connects: 0,
      durationMs: 0,
      bytesIn: 0,
      bytesOut: 0,
      end: reason,
    });
    client.close();
  }

  ended(session: TcpSession): void {
    if (!this.sessions.delete(session)) return;
    this.stats.active--;
    if (this.sessions.size > 0) return;
    unwatch(this);
    const waiting = this.whenEmpty;
    this.whenEmpty = [];
    for (const callback of waiting) callback();
  }

  sweep(now: number): void {
    const table = this.tables.current;
    for (const s of this.sessions) s.sweep(now, table);
  }

  get listening(): boolean {
    return this.server.listening;
  }

  listen(port: number, host: string, callback?: () => void): this {
    this.server.listen(port, host, callback);
    return this;
  }

  address(): AddressInfo | string | null {
    return this.server.address();
  }

  /** Stops accepting; `callback` runs once every session has ended. */
  close(callback?: (err?: Error) => void): this {
    this.server.close((err) => {
      if (err !== undefined || this.sessions.size === 0) return callback?.(err);
      this.whenEmpty.push(() => callback?.());
    });
    return this;
  }

  /** TCP sessions have no idle state between requests to close early: they finish or time out. */
  closeIdleConnections(): void {}

  /** A drain's grace period is over: every session is cut. */
  closeAllConnections(): void {
    for (const s of [...this.sessions]) s.close('drained');
  }
}
