/**
 * Counters of Layer 4 traffic (l4/*), kept like the rest of the request path's metrics: plain
 * numbers on objects a session already holds (one per listener, one per pool×backend), read by
 * prom-client only when /metrics is scraped. They outlive snapshots, so counters never go back.
 * Bytes of long sessions are added as they flow (on the sweeper's tick), not only at their end.
 */
import type { Registry } from 'prom-client';
import { scrapedSeries as series } from './scraped-series.js';

/** Why a connection was closed before it reached a backend. */
export const L4_REFUSALS = ['max-connections', 'untrusted-source', 'bad-proxy-header', 'hello-timeout', 'no-route', 'no-backend', 'connect-failed'] as const;
export type L4Refusal = (typeof L4_REFUSALS)[number];

/** What listeners and backends both count. */
class L4Counters {
  /** Sessions open now. */
  active = 0;
  /** Bytes in (from clients, on to backends) and out (from backends, on to clients). */
  bytesIn = 0;
  bytesOut = 0;
  /** Failed connects to backends (each retry counts). */
  connectFailures = 0;
}

export class L4ListenerStats extends L4Counters {
  /** Connections accepted, ever. */
  accepted = 0;
  readonly refused = Object.fromEntries(L4_REFUSALS.map((r) => [r, 0])) as Record<L4Refusal, number>;
  constructor(readonly listener: string) {
    super();
  }
}

export class L4BackendStats extends L4Counters {
  /** Sessions piped to this backend, ever. */
  connections = 0;
  constructor(
    readonly pool: string,
    readonly backend: string,
  ) {
    super();
  }
}

export class L4Stats {
  private readonly listeners = new Map<string, L4ListenerStats>();
  private readonly backends = new Map<string, L4BackendStats>();

  listener(name: string): L4ListenerStats {
    let s = this.listeners.get(name);
    if (s === undefined) {
      s = new L4ListenerStats(name);
      this.listeners.set(name, s);
    }
    return s;
  }

  backend(pool: string, backend: string): L4BackendStats {
    const key = `${pool}\u0000${backend}`;
    let s = this.backends.get(key);
    if (s === undefined) {
      s = new L4BackendStats(pool, backend);
      this.backends.set(key, s);
    }
    return s;
  }

  register(registry: Registry): void {
    const listeners = () => this.listeners.values();
    const backends = () => this.backends.values();
    const perListener = (type: 'counter' | 'gauge', name: string, help: string, read: (s: L4ListenerStats) => number) =>
      series(registry, type, name, help, ['listener'], function* () {
        for (const s of listeners()) yield [{ listener: s.listener }, read(s)];
      });
    const perBackend = (type: 'counter' | 'gauge', name: string, help: string, read: (s: L4BackendStats) => number) =>
      series(registry, type, name, help, ['pool', 'backend'], function* () {
        for (const s of backends()) yield [{ pool: s.pool, backend: s.backend }, read(s)];
      });
    perListener('gauge', 'lb_dp_l4_connections', 'Client connections open now on a tcp or tls-passthrough listener.', (s) => s.active);
    perListener('counter', 'lb_dp_l4_connections_total', 'Client connections accepted by a tcp or tls-passthrough listener.', (s) => s.accepted);
    perListener(
      'counter',
      'lb_dp_l4_connect_failures_total',
      'Connects to backends that failed (refused, timed out), retries included, by listener.',
      (s) => s.connectFailures,
    );
    series(
      registry,
      'counter',
      'lb_dp_l4_bytes_total',
      'Bytes an L4 listener received from clients (in) and sent to them (out).',
      ['listener', 'direction'],
      function* () {
        for (const s of listeners()) {
          yield [{ listener: s.listener, direction: 'in' }, s.bytesIn];
          yield [{ listener: s.listener, direction: 'out' }, s.bytesOut];
        }
      },
    );
    series(
      registry,
      'counter',
      'lb_dp_l4_refused_total',
      'Connections an L4 listener closed before piping them, by reason (max-connections, untrusted-source, bad-proxy-header, hello-timeout, no-route, no-backend, connect-failed).',
      ['listener', 'reason'],
      function* () {
        for (const s of listeners()) for (const reason of L4_REFUSALS) if (s.refused[reason] > 0) yield [{ listener: s.listener, reason }, s.refused[reason]];
      },
    );
    perBackend('gauge', 'lb_dp_l4_backend_connections', 'L4 sessions piped to a backend now.', (s) => s.active);
    perBackend('counter', 'lb_dp_l4_backend_connections_total', 'L4 sessions piped to a backend.', (s) => s.connections);
    perBackend('counter', 'lb_dp_l4_backend_connect_failures_total', 'Connects to a backend that failed (refused, timed out).', (s) => s.connectFailures);
    series(
      registry,
      'counter',
      'lb_dp_l4_backend_bytes_total',
      'Bytes sent to a backend (in: from clients) and received from it (out).',
      ['pool', 'backend', 'direction'],
      function* () {
        for (const s of backends()) {
          yield [{ pool: s.pool, backend: s.backend, direction: 'in' }, s.bytesIn];
          yield [{ pool: s.pool, backend: s.backend, direction: 'out' }, s.bytesOut];
        }
      },
    );
  }
}
