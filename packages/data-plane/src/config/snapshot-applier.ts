/**
 * Turns snapshots (pushed or cached) into the routing table the forwarder reads, and the listeners
 * the config names. Everything that can fail — parsing, validation, TLS contexts, compilation,
 * binding a new port — happens before the swap; the swap is one assignment to `current`; side
 * effects (closing upstream pools and listeners no longer used, writing the cache file) come after
 * and never block a request.
 *
 * Applying is synchronous unless the snapshot opens a port: then it waits for the bind, and pushes
 * that arrive meanwhile wait their turn, so snapshots are always applied in order.
 */
import { POOL_DEFAULTS, type Config, type ConfigSnapshot, type Ejection, type HealthUpdate, type Logger, type Route } from '@lb/shared';
import type { ListenerBinder, ListenerPlan, ListenerView } from './listener-binder.js';
import { keyMaterialOf, NO_KEY_MATERIAL, toSecrets, type KeyMaterial } from '../tls/key-material.js';
import { ListenerTlsCompiler } from '../tls/listener-tls.js';
import { UpstreamTlsCompiler } from '../tls/upstream-tls.js';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import { ERROR_CODES } from '../errors.js';
import type { HealthStore } from '../health/health-store.js';
import { HostEligibility, type PoolEligibility } from '../health/host-eligibility.js';
import { OutlierDetector } from '../outlier/outlier-detector.js';
import type { DataPlaneMetrics } from '../metrics.js';
import type { BackendView, PoolView } from '../metrics/backend-series.js';
import type { TableSource } from '../routing/table-source.js';
import { compileRoutingTable, type RoutingTable } from '../routing/routing-table.js';
import type { Clock, Random } from '../runtime/clock.js';
import type { UpstreamPools } from '../upstream/upstream-pools.js';
import { checkSnapshot } from './snapshot-validate.js';

export type ConfigSource = 'control-plane' | 'cache';

/** The answer to a push: ACK, or NACK with a reason. */
export type PushOutcome = { ok: true } | { ok: false; error: string };

/** What the discovery client needs from the node: state for Hello, and somewhere to apply pushes. */
export interface PushHandler {
  /** The config version running now; 0 when none. Sent as Hello.cached_version. */
  appliedVersion(): number;
  /** The health revision held now; 0 when none. */
  healthRevision(): number;
  /** Applies a config push and says whether to ACK or NACK it; asynchronous only when it opens a port. */
  onConfig(snapshot: ConfigSnapshot): PushOutcome | Promise<PushOutcome>;
  onHealth(update: HealthUpdate): PushOutcome;
}

export interface ConfigView {
  version: number;
  source: ConfigSource | null;
  appliedAt: string | null;
  pools: Record<string, { algorithm: string; backends: { id: string; address: string; weight: number; state: string }[] }>;
  routes: Record<string, Route>;
  health: { revision: number; backends: ReturnType<HealthStore['toJSON']> };
  /** Per pool: active and eligible backends, panic, slow-start ramps. */
  eligibility: Record<string, PoolEligibility>;
  /** Backends this node ejected on its own traffic (until: ISO 8601). */
  ejections: Array<{ pool: string; backendId: string; until: string; ejections: number }>;
  /** The configured listeners open now (not `--listen`), with the certificates each serves. */
  listeners: ListenerView[];
}

export interface ApplierDeps {
  upstreams: UpstreamPools;
  metrics: DataPlaneMetrics;
  health: HealthStore;
  logger: Logger;
  random: Random;
  clock: Clock;
  cache?: SnapshotCache | undefined;
  stickySecret?: string | undefined;
  /** Where configured listeners are opened; absent: they are compiled (TLS checked) but not opened. */
  listeners?: ListenerBinder | undefined;
}

export class SnapshotApplier implements TableSource, PushHandler {
  /** The table requests are routed with. Replaced whole, never mutated. */
  current: RoutingTable | undefined;
  private source: ConfigSource | null = null;
  private appliedAt: number | null = null;
  /** Passive health from this node's traffic; ejections rebuild the pool's balancer. */
  readonly outliers: OutlierDetector;
  /** Which backends are routable and at what weight (health, ejections, panic, slow start). */
  readonly eligibility: HostEligibility;
  private ejectionListener: ((ejection: Ejection) => void) | undefined;
  /** The key material of the running snapshot. */
  private material: KeyMaterial = NO_KEY_MATERIAL;
  private readonly tls = new ListenerTlsCompiler();
  private readonly upstreamTls = new UpstreamTlsCompiler();
  /** An apply waiting for a port to bind: later pushes wait for it. */
  private binding: Promise<unknown> | undefined;

  constructor(private readonly deps: ApplierDeps) {
    this.outliers = new OutlierDetector({
      clock: deps.clock,
      onChange: (pool) => this.eligibility.rebuild(pool),
      report: (ejection) => {
        deps.logger.warn(
          { pool: ejection.pool, backend: ejection.backendId, ejected: ejection.ejected, reason: ejection.reason },
          ejection.ejected ? 'backend ejected' : 'backend back from ejection',
        );
        this.ejectionListener?.(ejection);
      },
    });
    this.eligibility = new HostEligibility({ health: deps.health, outliers: this.outliers, clock: deps.clock, logger: deps.logger });
    deps.metrics.poolSource = () => this.poolViews();
  }

  /** The current table's pools and backends as the metrics scrape reads them. */
  private *poolViews(): Iterable<PoolView> {
    const table = this.current;
    if (table === undefined) return;
    const state = this.eligibility.describe();
    for (const pool of table.pools.values()) {
      const backends: BackendView[] = pool.backends.map((b) => {
        const ejected = this.outliers.isEjected(pool.name, b.id);
        const eligible = b.upstream !== undefined && !ejected && this.deps.health.get(pool.name, b.id)?.status !== 'unhealthy';
        return { pool: pool.name, backend: b.id, runtime: b.runtime, eligible, ejected };
      });
      yield { pool: pool.name, backends, panic: state[pool.name]?.panic ?? false };
    }
  }

  /** Where ejections and their ends go (the control plane stream); must not block. */
  onEjection(listener: (ejection: Ejection) => void): void {
    this.ejectionListener = listener;
  }

  appliedVersion(): number {
    return this.current?.version ?? 0;
  }

  healthRevision(): number {
    return this.deps.health.revision;
  }

  /** The key material of the running snapshot, as it travels (workers, the cache file). */
  get secrets(): ReturnType<typeof toSecrets> {
    return toSecrets(this.material);
  }

  /** Starts from the cache file, if it holds a usable snapshot. Returns the version loaded (0: none). */
  loadCache(): number | Promise<number> {
    const cached = this.deps.cache?.load();
    if (cached === undefined) return 0;
    return then(this.install(cached.version, cached.config, keyMaterialOf(cached.secrets), 'cache'), (outcome) => {
      if (!outcome.ok) {
        this.deps.logger.warn({ code: ERROR_CODES.CACHE_CORRUPT, reason: outcome.error }, 'cached snapshot cannot be applied; ignoring it');
        return 0;
      }
      this.deps.logger.info({ version: cached.version, path: this.deps.cache?.path }, 'serving the cached snapshot until a control plane answers');
      return cached.version;
    });
  }

  onConfig(snapshot: ConfigSnapshot): PushOutcome | Promise<PushOutcome> {
    // Behind an apply that waits for a port: in order, never two at once.
    if (this.binding !== undefined) return this.binding.then(() => this.onConfig(snapshot));
    const { logger, metrics } = this.deps;
    const check = checkSnapshot(snapshot);
    if (!check.ok) {
      metrics.snapshot('rejected');
      logger.warn({ version: snapshot.version, code: check.code, reason: check.error }, 'snapshot rejected; keeping the running config');
      // The code leads the NACK's text, so that `GET /v1/nodes` shows it (docs/errors.md).
      return { ok: false, error: `${check.code}: ${check.error}` };
    }
    const running = this.current;
    const material = keyMaterialOf(snapshot.secrets);
    // A control plane that restarted (or a replica we reconnected to) resends what we run: ACK again.
    // The same version with other key material (a rotated ticket key) is applied like a new one.
    if (
      running !== undefined &&
      running.version === snapshot.version &&
      material.fingerprint === this.material.fingerprint &&
      JSON.stringify(running.config) === JSON.stringify(check.config)
    ) {
      this.source = 'control-plane';
      metrics.snapshot('unchanged');
      return { ok: true };
    }
    if (running !== undefined && snapshot.version < running.version) {
      // Versions only grow (a rollback is a new version), so this is a lagging replica or a rebuilt
      // store. The control plane is the authority; apply it, but leave a trace.
      logger.warn({ version: snapshot.version, running: running.version }, 'control plane pushed an older version than the one running; applying it');
    }
    return then(this.install(snapshot.version, check.config, material, 'control-plane'), (outcome) => {
      metrics.snapshot(outcome.ok ? 'applied' : 'rejected');
      if (outcome.ok) {
        logger.info({ version: snapshot.version }, 'snapshot applied');
        this.deps.cache?.save({ version: snapshot.version, config: check.config, secrets: toSecrets(material) });
      } else logger.warn({ version: snapshot.version, reason: outcome.error }, 'snapshot rejected; keeping the running config');
      return outcome;
    });
  }

  onHealth(update: HealthUpdate): PushOutcome {
    this.eligibility.onHealth(this.deps.health.apply(update));
    return { ok: true };
  }

  /** Every configured listener as the snapshot wants it, TLS compiled; or why it cannot be served. */
  private planListeners(config: Config, material: KeyMaterial): { ok: true; plans: ListenerPlan[] } | { ok: false; error: string } {
    const plans: ListenerPlan[] = [];
    for (const [name, listener] of Object.entries(config.listeners ?? {})) {
      let tls: ListenerPlan['tls'];
      if (listener.protocol === 'https' && listener.tls !== undefined) {
        const compiled = this.tls.compile(name, listener.tls, config, material);
        if (!compiled.ok) return { ok: false, error: `${ERROR_CODES.TLS_UNAVAILABLE}: ${compiled.error}` };
        tls = compiled.plan;
      }
      plans.push({ name, port: listener.port, protocol: listener.protocol, tls });
    }
    return { ok: true, plans };
  }

  private install(version: number, config: Config, material: KeyMaterial, source: ConfigSource): PushOutcome | Promise<PushOutcome> {
    const { upstreams, metrics, random, logger, clock, stickySecret } = this.deps;
    const previous = this.current;
    const listeners = this.planListeners(config, material);
    if (!listeners.ok) {
      this.tls.abortRound();
      return listeners;
    }
    const upstreamTls = this.upstreamTls.compile(config, material);
    if (!upstreamTls.ok) {
      this.tls.abortRound();
      return { ok: false, error: `${ERROR_CODES.TLS_UNAVAILABLE}: ${upstreamTls.error}` };
    }
    let table: RoutingTable;
    try {
      table = compileRoutingTable(
        { version, config },
        { upstreams, metrics, random, clock, stickySecret, previous, hosts: this.eligibility.hostsFor, upstreamTls: upstreamTls.byPool },
      );
    } catch (err) {
      // Give back the upstream pools the failed compile may have opened.
      upstreams.retainOnly(previous?.addresses() ?? new Set());
      this.tls.abortRound();
      logger.error({ err, version, code: ERROR_CODES.SNAPSHOT_COMPILE }, 'snapshot passed validation but could not be compiled');
      return { ok: false, error: `${ERROR_CODES.SNAPSHOT_COMPILE}: cannot build routing table: ${(err as Error).message}` };
    }
    const binder = this.deps.listeners;
    if (binder === undefined || !binder.needsBind(listeners.plans)) {
      this.swap(table, previous, material, source, listeners.plans);
      return { ok: true };
    }
    const bound = binder.bind(listeners.plans).then((error): PushOutcome => {
      if (error !== undefined) {
        upstreams.retainOnly(previous?.addresses() ?? new Set());
        this.tls.abortRound();
        return { ok: false, error: `${ERROR_CODES.LISTENER_BIND}: ${error}` };
      }
      this.swap(table, previous, material, source, listeners.plans);
      return { ok: true };
    });
    this.binding = bound.finally(() => {
      this.binding = undefined;
    });
    return bound;
  }

  /** The one-assignment swap, then what follows it: listeners settle, unused upstream pools close. */
  private swap(table: RoutingTable, previous: RoutingTable | undefined, material: KeyMaterial, source: ConfigSource, plans: readonly ListenerPlan[]): void {
    const { upstreams, metrics } = this.deps;
    const version = table.version;
    this.current = table;
    this.material = material;
    this.tls.endRound();
    this.deps.listeners?.settle(plans);
    this.source = source;
    this.appliedAt = this.deps.clock.now();
    metrics.setConfigVersion(version);
    this.eligibility.adopt(table);
    // Backends that stopped being active (draining, disabled, removed) finish what they have, for
    // at most their pool's drainTimeoutMs.
    const grace = new Map<string, number>();
    for (const pool of previous?.pools.values() ?? []) {
      const ms = pool.settings.drainTimeoutMs ?? POOL_DEFAULTS.drainTimeoutMs;
      for (const b of pool.backends) grace.set(b.address, Math.max(grace.get(b.address) ?? 0, ms));
    }
    upstreams.retainOnly(table.addresses(), (address) => grace.get(address));
  }

  /** The /config document: what runs, where it came from, and the table summary. */
  describe(): ConfigView {
    const table = this.current;
    const pools: ConfigView['pools'] = {};
    for (const [name, pool] of table?.pools ?? []) {
      pools[name] = { algorithm: pool.algorithm, backends: pool.backends.map((b) => ({ id: b.id, address: b.address, weight: b.weight, state: b.state })) };
    }
    return {
      version: table?.version ?? 0,
      source: this.source,
      appliedAt: this.appliedAt === null ? null : new Date(this.appliedAt).toISOString(),
      pools,
      routes: table?.config.routes ?? {},
      health: { revision: this.deps.health.revision, backends: this.deps.health.toJSON() },
      eligibility: this.eligibility.describe(),
      ejections: this.outliers.ejected().map((e) => ({ ...e, until: new Date(e.until).toISOString() })),
      listeners: this.deps.listeners?.describe() ?? [],
    };
  }
}

/** `f(value)`, now when `value` is at hand, later when it is a promise: keeps the synchronous path synchronous. */
function then<T, R>(value: T | Promise<T>, f: (value: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}
