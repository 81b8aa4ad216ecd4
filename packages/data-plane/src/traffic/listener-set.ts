/**
 * The listeners a config names (ListenerBinder), each with its own forwarder — which routes it
 * may match, what X-Forwarded-Proto and -Port say — on the node's --bind-address. HTTPS listeners
 * run the built-in HTTP/1.1 server over TLS: each handshake picks its context from the listener's
 * current TLS plan (SNI table and default), which a new snapshot replaces whole; connections
 * already open keep the context they were made with, so a rotation drops nothing. tcp and
 * tls-passthrough listeners are TcpListeners (l4/tcp-listener.ts), made by `tcpListenerFor`.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '@lb/shared';
import type { ListenerBinder, ListenerPlan, ListenerView } from '../config/listener-binder.js';
import type { L4ListenerSettings } from '../l4/l4-settings.js';
import type { TcpListener } from '../l4/tcp-listener.js';
import type { Forwarder, ListenerContext } from '../proxy/forwarder.js';
import { createProxyServer, drainServer, listen, type ProxyListener, type ProxyServerOptions } from '../proxy/proxy-server.js';
import type { ListenerTlsPlan } from '../tls/listener-tls.js';

export interface ListenerSetOptions {
  /** Where every configured listener binds (--bind-address). */
  host: string;
  /** A forwarder for a listener (sharing the process's shedder and access log). */
  forwarderFor(listener: ListenerContext): Forwarder;
  proxy?: ProxyServerOptions | undefined;
  logger: Logger;
  /** How long a listener that left the config lets its requests finish. */
  drainTimeoutMs: number;
  /** A TLS handshake failed on `listener` (counted). */
  onHandshakeError?(listener: string): void;
  /** A tcp or tls-passthrough listener; absent: such plans cannot be opened. */
  tcpListenerFor?(name: string, settings: L4ListenerSettings): TcpListener;
}

interface Running {
  plan: ListenerPlan;
  readonly server: ProxyListener;
  /** HTTP listeners' request path; undefined for L4 listeners. */
  readonly forwarder: Forwarder | undefined;
  /** L4 listeners: the server itself, told of new settings. */
  readonly tcp: TcpListener | undefined;
  /** What each handshake reads: replaced whole, never changed in place. */
  tls: ListenerTlsPlan | undefined;
  address: AddressInfo | undefined;
}

/** A change a running listener cannot take in place: it is opened anew. */
function moved(running: ListenerPlan, wanted: ListenerPlan): boolean {
  return (
    running.port !== wanted.port ||
    running.protocol !== wanted.protocol ||
    (running.tls?.alpn.join() ?? '') !== (wanted.tls?.alpn.join() ?? '') ||
    (running.h2c === true) !== (wanted.h2c === true)
  );
}

export class ListenerSet implements ListenerBinder {
  private readonly running = new Map<string, Running>();
  /** Opened by bind(), serving from settle() on. */
  private readonly opened = new Map<string, Running>();

  constructor(private readonly options: ListenerSetOptions) {}

  needsBind(plans: readonly ListenerPlan[]): boolean {
    return plans.some((plan) => {
      const running = this.running.get(plan.name);
      return running === undefined || moved(running.plan, plan);
    });
  }

  async bind(plans: readonly ListenerPlan[]): Promise<string | undefined> {
    const { host } = this.options;
    for (const plan of plans) {
      const running = this.running.get(plan.name);
      if (running !== undefined && !moved(running.plan, plan)) continue;
      // The same port with another protocol: the old server must let go of it first (its open
      // connections finish). Should the new bind then fail, the port stays closed until the next push.
      if (running !== undefined && running.plan.port === plan.port) {
        this.running.delete(plan.name);
        this.retire(running);
      }
      try {
        this.opened.set(plan.name, await this.open(plan));
      } catch (err) {
        for (const o of this.opened.values()) void drainServer(o.server, 0);
        this.opened.clear();
        return `listener "${plan.name}" cannot listen on ${host.includes(':') ? `[${host}]` : host}:${plan.port}: ${(err as Error).message}`;
      }
    }
    return undefined;
  }

  private async open(plan: ListenerPlan): Promise<Running> {
    const running = plan.l4 === undefined ? this.openHttp(plan) : this.openTcp(plan, plan.l4);
    const server = running.server;
    server.on('error', (err: Error) => this.options.logger.error({ err, listener: plan.name }, 'listener error'));
    running.address = await listen(server, this.options.host, plan.port);
    running.forwarder?.bound(running.address.port);
    this.options.logger.info({ listener: plan.name, protocol: plan.protocol, port: running.address.port }, 'listener open');
    return running;
  }

  private openTcp(plan: ListenerPlan, settings: L4ListenerSettings): Running {
    const make = this.options.tcpListenerFor;
    if (make === undefined) throw new Error(`${plan.protocol} listeners are not served by this process`);
    const tcp = make(plan.name, settings);
    return { plan, server: tcp, forwarder: undefined, tcp, tls: undefined, address: undefined };
  }

  private openHttp(plan: ListenerPlan): Running {
    const forwarder = this.options.forwarderFor({ name: plan.name, protocol: plan.protocol });
    const running: Running = { plan, server: undefined as unknown as ProxyListener, forwarder, tcp: undefined, tls: plan.tls, address: undefined };
    // HTTP/2: by ALPN over TLS, by prior knowledge (h2c) on plain HTTP when the listener says so.
    const http2 = { h2: plan.tls?.alpn.includes('h2') === true, h2c: plan.h2c === true };
    const server =
      plan.tls === undefined
        ? createProxyServer(forwarder, this.options.proxy, undefined, http2)
        : createProxyServer(
            forwarder,
            this.options.proxy,
            {
              choosesBySni: () => running.tls!.choosesBySni,
              contextFor: (servername) => {
                const tls = running.tls!;
                return (servername === undefined ? undefined : tls.sni.lookup(servername)) ?? tls.defaultContext;
              },
              alpn: plan.tls.alpnWire,
              onHandshakeError: () => this.options.onHandshakeError?.(plan.name),
            },
            http2,
          );
    (running as { server: ProxyListener }).server = server;
    return running;
  }

  settle(plans: readonly ListenerPlan[]): void {
    const wanted = new Map(plans.map((p) => [p.name, p]));
    for (const [name, opened] of this.opened) {
      const old = this.running.get(name);
      if (old !== undefined) this.retire(old);
      this.running.set(name, opened);
    }
    this.opened.clear();
    for (const [name, running] of [...this.running]) {
      const plan = wanted.get(name);
      if (plan === undefined) {
        this.running.delete(name);
        this.retire(running);
        continue;
      }
      running.plan = plan;
      running.tls = plan.tls;
      if (plan.l4 !== undefined) running.tcp?.configure(plan.l4);
    }
  }

  /** Stops accepting on a listener that left the config; its requests get the drain period. */
  private retire(running: Running): void {
    this.options.logger.info({ listener: running.plan.name, port: running.address?.port }, 'listener closing');
    void drainServer(running.server, this.options.drainTimeoutMs, running.forwarder?.tunnels);
  }

  describe(): ListenerView[] {
    return [...this.running.values()].map((r) => ({
      name: r.plan.name,
      protocol: r.plan.protocol,
      address: r.address === undefined ? '' : `${r.address.address}:${r.address.port}`,
      ...(r.plan.tls !== undefined ? { certificates: r.plan.tls.certificates } : {}),
    }));
  }

  /** Every listener stops accepting; requests in flight get `graceMs`. True when all finished in time. */
  async drain(graceMs: number): Promise<boolean> {
    const all = [...this.running.values(), ...this.opened.values()];
    this.running.clear();
    this.opened.clear();
    const results = await Promise.all(all.map((r) => drainServer(r.server, graceMs, r.forwarder?.tunnels)));
    return results.every(Boolean);
  }
}
