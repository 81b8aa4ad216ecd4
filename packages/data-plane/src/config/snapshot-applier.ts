/**
 * Turns snapshots and deltas (pushed) or the cache file into the routing table the forwarder
 * reads, and the listeners the config names. Everything that can fail — parsing, applying a delta
 * to a copy, validating the whole result, TLS contexts, compilation, binding a new port — happens
 * before the swap; the swap is one assignment to `current`; side effects (closing upstream pools
 * and listeners no longer used, writing the cache file) come after and never block a request. A
 * delta that changes one pool rebuilds that pool's balancer only: every other compiled pool is
 * taken over from the running table (their resource hashes are unchanged).
 *
 * Applying is synchronous unless the snapshot opens a port: then it waits for the bind, and pushes
 * that arrive meanwhile wait their turn, so snapshots are always applied in order.
 */
import type { Config, ConfigSnapshot, Ejection, HealthUpdate, Logger, Route } from '@lb/shared';
import type { ListenerBinder, ListenerPlan, ListenerView } from './listener-binder.js';
import { keyMaterialOf, NO_KEY_MATERIAL, toSecrets, type KeyMaterial } from '../tls/key-material.js';
import { ListenerTlsCompiler } from '../tls/listener-tls.js';
import { compileL4Listener } from '../l4/l4-settings.js';
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
import { appliedConfig, type AppliedConfig } from './applied-config.js';
import { resolvePush, type ResolveOptions } from './push-resolver.js';
import { UpstreamRefs } from './upstream-refs.js';

export type ConfigSource = 'control-plane' | 'cache';

/** The answer to a push: ACK, or NACK with a reason. */
export type PushOutcome = { ok: true } | { ok: false; error: string };

/** The config a node runs, as its Hello reports it. */
export interface RunningConfig {
  /** 0 when none. */
  version: number;
  historyId: string;
  /** '' when none. */
  digest: string;
}

/** What the discovery client needs from the node: state for Hello, and somewhere to apply pushes. */
export interface PushHandler {
  /** The config running now (Hello.cached_version, cached_history_id, cached_digest). */
  runningConfig(): RunningConfig;
  /** The health revision held now; 0 when none. */
  healthRevision(): number;
  /** Applies a config push and says whether to ACK or NACK it; asynchronous only when it opens a port. */
  onConfig(snapshot: ConfigSnapshot): PushOutcome | Promise<PushOutcome>;
  onHealth(update: HealthUpdate): PushOutcome;
}

export interface ConfigView {
  version: number;
  /** The history the version belongs to ('' when unknown). */
  historyId: string;
  /** The digest of the running config's resources ('' when none). */
  digest: string;
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
  /** The config `current` was compiled from, with its history and resource hashes. */
  private applied: AppliedConfig | undefined;
  private readonly upstreamRefs = new UpstreamRefs();
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

  runningConfig(): RunningConfig {
    const applied = this.applied;
    return { version: applied?.version ?? 0, historyId: applied?.historyId ?? '', digest: applied?.digest ?? '' };
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
    const applied = appliedConfig(cached.version, cached.historyId, cached.config);
    return then(this.install(applied, keyMaterialOf(cached.secrets), 'cache'), (outcome) => {
      if (!outcome.ok) {
        this.deps.logger.warn({ code: ERROR_CODES.CACHE_CORRUPT, reason: outcome.error }, 'cached snapshot cannot be applied; ignoring it');
        return 0;
      }
      this.deps.logger.info({ version: cached.version, path: this.deps.cache?.path }, 'serving the cached snapshot until a control plane answers');
      return cached.version;
    });
  }

  /** Applies a full snapshot or a delta; `options.replace`: see ResolveOptions (cluster workers only). */
  onConfig(snapshot: ConfigSnapshot, options: ResolveOptions = {}): PushOutcome | Promise<PushOutcome> {
    // Behind an apply that waits for a port: in order, never two at once.
    if (this.binding !== undefined) return this.binding.then(() => this.onConfig(snapshot, options));
    const { logger, metrics } = this.deps;
    const resolved = resolvePush(this.applied, snapshot, options);
    if (!resolved.ok) {
      metrics.snapshot('rejected');
      logger.warn({ version: snapshot.version, code: resolved.code, reason: resolved.error }, 'snapshot rejected; keeping the running config');
      // The code leads the NACK's text, so that `GET /v1/nodes` shows it (docs/errors.md).
      return { ok: false, error: `${resolved.code}: ${resolved.error}` };
    }
    const material = keyMaterialOf(snapshot.secrets);
    // The same config with other key material (a rotated ticket key) is applied like a new one.
    if (resolved.unchanged && material.fingerprint === this.material.fingerprint) {
      this.source = 'control-plane';
      metrics.snapshot('unchanged');
      return { ok: true };
    }
    const next = resolved.next;
    return then(this.install(next, material, 'control-plane'), (outcome) => {
      metrics.snapshot(outcome.ok ? 'applied' : 'rejected');
      if (outcome.ok) {
        logger.info({ version: next.version, history: next.historyId, delta: snapshot.configJson === '' }, 'snapshot applied');
        this.deps.cache?.save({ version: next.version, historyId: next.historyId, config: next.config, secrets: toSecrets(material) });
      } else logger.warn({ version: next.version, reason: outcome.error }, 'snapshot rejected; keeping the running config');
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
      plans.push({ name, port: listener.port, protocol: listener.protocol, tls, l4: compileL4Listener(listener), h2c: listener.h2c === true });
    }
    return { ok: true, plans };
  }

  private install(next: AppliedConfig, material: KeyMaterial, source: ConfigSource): PushOutcome | Promise<PushOutcome> {
    const { upstreams, metrics, random, logger, clock, stickySecret } = this.deps;
    const { version, config } = next;
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
        {
          upstreams,
          metrics,
          random,
          clock,
          stickySecret,
          previous,
          hosts: this.eligibility.hostsFor,
          upstreamTls: upstreamTls.byPool,
          resourceHashes: next.hashes,
        },
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
      this.swap(table, next, previous, material, source, listeners.plans);
      return { ok: true };
    }
    const bound = binder.bind(listeners.plans).then((error): PushOutcome => {
      if (error !== undefined) {
        upstreams.retainOnly(previous?.addresses() ?? new Set());
        this.tls.abortRound();
        return { ok: false, error: `${ERROR_CODES.LISTENER_BIND}: ${error}` };
      }
      this.swap(table, next, previous, material, source, listeners.plans);
      return { ok: true };
    });
    this.binding = bound.finally(() => {
      this.binding = undefined;
    });
    return bound;
  }

  /** The one-assignment swap, then what follows it: listeners settle, unused upstream pools close. */
  private swap(
    table: RoutingTable,
    next: AppliedConfig,
    previous: RoutingTable | undefined,
    material: KeyMaterial,
    source: ConfigSource,
    plans: readonly ListenerPlan[],
  ): void {
    const { upstreams, metrics } = this.deps;
    const version = table.version;
    this.current = table;
    this.applied = next;
    this.material = material;
    this.tls.endRound();
    this.deps.listeners?.settle(plans);
    this.source = source;
    this.appliedAt = this.deps.clock.now();
    metrics.setConfigVersion(version);
    this.eligibility.adopt(table);
    // Backends that stopped being active (draining, disabled, removed) finish what they have, for
    // at most their pool's drainTimeoutMs.
    upstreams.release(this.upstreamRefs.swap(previous, table));
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
      historyId: this.applied?.historyId ?? '',
      digest: this.applied?.digest ?? '',
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
