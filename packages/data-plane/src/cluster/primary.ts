/**
 * The primary process of a data plane started with --workers N (N > 1). It holds what there is one
 * of per node — the control plane stream, the admin port and the cache file — and N worker
 * processes (node:cluster) that serve client traffic on the shared listener.
 *
 * Snapshots: the primary resolves a push first (a delta applied to a copy of what the workers run,
 * the whole result validated; what cannot be applied is NACKed without reaching any worker),
 * forwards the push as received to every worker — a delta stays a delta over IPC, each worker
 * applies it to the same base — and ACKs once each of them has applied it. If a worker refuses it,
 * the push is NACKed and the last good config is sent again, whole, so all workers agree.
 * The cache file is written once per applied version, by the primary only.
 *
 * Workers that die are started again (with backoff if they keep dying); a new worker gets the
 * current snapshot and all health in its `init` and listens only once it has applied them; one
 * that refuses its `init` is killed and replaced the same way.
 * /metrics aggregates the workers' registries with the primary's (prom-client's
 * AggregatorRegistry.aggregate: counters summed, gauges per their aggregator).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConfigSnapshot, HealthUpdate, Logger, TlsSecrets } from '@lb/shared';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { createAdminServer } from '../admin/admin-server.js';
import { SnapshotCache } from '../cache/snapshot-cache.js';
import { appliedConfig, type AppliedConfig } from '../config/applied-config.js';
import { fullSnapshotOf, resolvePush } from '../config/push-resolver.js';
import type { ConfigSource, ConfigView, PushOutcome, RunningConfig } from '../config/snapshot-applier.js';
import { HealthStore } from '../health/health-store.js';
import { DataPlaneMetrics } from '../metrics.js';
import { createDiscoveryClient, httpUrl, startTrafficReports, type DataPlaneOptions } from '../node.js';
import type { MetricJson } from '../metrics/traffic-summary.js';
import type { TrafficReporter } from '../push/traffic-reporter.js';
import { drainServer, listen } from '../proxy/proxy-server.js';
import type { AsyncPushHandler, DiscoveryClient } from '../push/discovery-client.js';
import { allocatorInUse } from '../runtime/allocator.js';
import { keyMaterialOf, toSecrets } from '../tls/key-material.js';
import { isOurs, LB, type FromWorker, type ToWorker } from './protocol.js';

export interface ClusterOptions extends Omit<DataPlaneOptions, 'proxy' | 'upstream' | 'clock' | 'defaultMetrics'> {
  /** Worker processes to run (≥ 1). */
  workers: number;
  logger: Logger;
  /** How long a worker may take from fork to listening (ms). Default 30000. */
  workerStartTimeoutMs?: number;
  /** How long a scrape or /config waits for workers' answers (ms). Default 2000. */
  workerQueryTimeoutMs?: number;
  /**
   * How long a worker may take to apply a push (ms) before it is taken for hung, killed and
   * replaced (the replacement starts from the current snapshot). Default 10000.
   */
  workerApplyTimeoutMs?: number;
}

interface WorkerState {
  readonly worker: Worker;
  /** `init` was sent: from now on the worker gets every push. */
  initialized: boolean;
  /** The seq of its `init`: a refusal of that one means the worker cannot run what its siblings run. */
  initSeq: number;
  /** It refused its `init` and is being killed: never counted as serving, sent nothing more. */
  failed: boolean;
  listening: boolean;
  readonly startedAt: number;
}

interface Applied {
  config: AppliedConfig;
  /** The key material the workers run with (null: none). */
  secrets: TlsSecrets | null;
  source: ConfigSource;
  appliedAt: number;
}

interface Broadcast {
  waiting: Set<number>;
  errors: string[];
  resolve(outcome: PushOutcome): void;
}

interface Query<T> {
  waiting: Set<number>;
  answers: T[];
  resolve(answers: T[]): void;
}

type Body<T> = T extends unknown ? Omit<T, 'lb'> : never;

/** A full HealthUpdate rebuilt from the store, for a worker that starts after the pushes went by. */
function fullHealth(store: HealthStore): HealthUpdate {
  const backends: HealthUpdate['backends'] = [];
  for (const [pool, byId] of Object.entries(store.toJSON())) {
    for (const [backendId, state] of Object.entries(byId)) backends.push({ pool, backendId, status: state.status, sinceUnixMs: state.sinceUnixMs });
  }
  return { revision: store.revision, nonce: 'init', full: true, backends };
}

export class ClusterPrimary implements AsyncPushHandler {
  readonly logger: Logger;
  readonly metrics = new DataPlaneMetrics({ scope: 'primary' });
  readonly health = new HealthStore();
  readonly cache: SnapshotCache | undefined;
  private readonly adminServer: Server;
  private readonly workers = new Map<number, WorkerState>();
  private readonly broadcasts = new Map<number, Broadcast>();
  private readonly queries = new Map<number, Query<unknown>>();
  private seq = 0;
  /** What every worker runs (ACKed); undefined until the first snapshot. */
  private good: Applied | undefined;
  /** What a worker starting now must apply: the newest config sent, even if not ACKed yet, and its key material. */
  private latest: AppliedConfig | undefined;
  private latestSecrets: TlsSecrets | null = null;
  /** Pushes are applied one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();
  private discovery: DiscoveryClient | undefined;
  private reporter: TrafficReporter | undefined;
  private draining = false;
  private stopping: Promise<void> | undefined;
  private deathsInARow = 0;
  /** start() finished: from now on a worker that dies is replaced. */
  private up = false;
  private readonly started = new Map<number, { resolve(): void; reject(err: Error): void }>();
  proxyAddress: AddressInfo | undefined;
  adminAddress: AddressInfo | undefined;

  constructor(private readonly options: ClusterOptions) {
    this.logger = options.logger;
    const metrics = this.metrics;
    this.cache =
      options.cacheFile === undefined
        ? undefined
        : new SnapshotCache(options.cacheFile, this.logger, { onWrite: (ok) => metrics.cacheWrite(ok ? 'ok' : 'error') });
    metrics.certificates = () => this.good?.config.config.certificates;
    this.adminServer = createAdminServer(
      {
        ready: () => {
          if (this.draining) return { ready: false, reason: 'shutting down' };
          if (!this.up) return { ready: false, reason: 'workers starting' };
          if (this.good === undefined) return { ready: false, reason: 'no config snapshot applied yet' };
          if (this.serving() === 0) return { ready: false, reason: 'no worker is serving' };
          return { ready: true };
        },
        describeConfig: () => this.describe(),
      },
      { contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE, metrics: () => this.aggregatedMetrics() },
      this.logger,
    );
    cluster.on('message', (worker, message: unknown) => this.onWorkerMessage(worker, message));
    cluster.on('exit', (worker, code, signal) => this.onWorkerExit(worker, code, signal));
  }

  get proxyUrl(): string {
    return httpUrl(this.proxyAddress!);
  }

  get adminUrl(): string {
    return httpUrl(this.adminAddress!);
  }

  /** Loads the cache, starts the workers and waits until each listens, opens the admin port, then connects to the control planes. */
  async start(): Promise<void> {
    const cached = this.cache?.load();
    if (cached !== undefined) {
      const config = appliedConfig(cached.version, cached.historyId, cached.config);
      const secrets = cached.secrets ?? null;
      this.latest = config;
      this.latestSecrets = secrets;
      this.good = { config, secrets, source: 'cache', appliedAt: Date.now() };
      this.metrics.setConfigVersion(cached.version);
      this.logger.info({ version: cached.version, path: this.cache?.path }, 'serving the cached snapshot until a control plane answers');
    }
    // Each worker accepts from the shared listening socket itself. Under node:cluster's default
    // round robin the primary accepts every connection and passes it over IPC, keeping its own copy
    // until the worker answers: a worker that dies in between leaves that client connected to
    // nobody, for ever (and every new connection costs the primary an accept and a message).
    // Set before the first fork, which is when node:cluster reads it.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    // Like the single-process node: client traffic is accepted before the admin port says alive.
    await Promise.all(Array.from({ length: this.options.workers }, () => this.fork()));
    this.adminAddress = await listen(this.adminServer, this.options.adminListen.host, this.options.adminListen.port);
    this.up = true;
    // Workers inherit this process's environment, LD_PRELOAD included: they run on the same malloc.
    this.logger.info(
      {
        listen: this.proxyUrl,
        admin: this.adminUrl,
        nodeId: this.options.nodeId,
        workers: this.options.workers,
        allocator: allocatorInUse(),
        node: process.version,
      },
      'data plane listening',
    );
    if (this.options.controlPlanes.length > 0) {
      this.discovery = createDiscoveryClient(this.options, this.proxyAddress!, this, this.logger, this.metrics);
      this.discovery.start();
      this.reporter = startTrafficReports(this.options, this.discovery, this, () => this.aggregatedJson(), this.logger);
    }
  }

  get controlPlane(): string | undefined {
    return this.discovery?.connectedTo;
  }

  // --- PushHandler: what the discovery client drives ---

  runningConfig(): RunningConfig {
    const running = this.good?.config;
    return { version: running?.version ?? 0, historyId: running?.historyId ?? '', digest: running?.digest ?? '' };
  }

  healthRevision(): number {
    return this.health.revision;
  }

  onConfig(snapshot: ConfigSnapshot): Promise<PushOutcome> {
    return this.serially(() => this.applyConfig(snapshot));
  }

  onHealth(update: HealthUpdate): Promise<PushOutcome> {
    return this.serially(() => {
      this.health.apply(update);
      return this.broadcast((seq) => ({ kind: 'health', seq, update }));
    });
  }

  private serially(run: () => Promise<PushOutcome>): Promise<PushOutcome> {
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => {});
    return next;
  }

  private async applyConfig(snapshot: ConfigSnapshot): Promise<PushOutcome> {
    const { logger, metrics } = this;
    const resolved = resolvePush(this.latest, snapshot);
    if (!resolved.ok) {
      metrics.snapshot('rejected');
      logger.warn({ version: snapshot.version, code: resolved.code, reason: resolved.error }, 'snapshot rejected; keeping the running config');
      return { ok: false, error: `${resolved.code}: ${resolved.error}` };
    }
    const good = this.good;
    // The same config with other key material (a rotated ticket key) goes to the workers like a new one.
    if (
      resolved.unchanged &&
      good !== undefined &&
      good.config === resolved.next &&
      keyMaterialOf(good.secrets).fingerprint === keyMaterialOf(snapshot.secrets).fingerprint
    ) {
      good.source = 'control-plane';
      metrics.snapshot('unchanged');
      return { ok: true };
    }
    const next = resolved.next;
    // Workers get the push as received; each resolves it against the same base itself.
    const previous = this.latest;
    const previousSecrets = this.latestSecrets;
    this.latest = next;
    this.latestSecrets = snapshot.secrets ?? null;
    const outcome = await this.broadcast((seq) => ({ kind: 'config', seq, snapshot }));
    if (!outcome.ok) {
      metrics.snapshot('rejected');
      logger.error({ version: snapshot.version, reason: outcome.error }, 'a worker could not apply the snapshot; restoring the last good one');
      this.latest = previous;
      this.latestSecrets = previousSecrets;
      if (previous !== undefined)
        void this.broadcast((seq) => ({ kind: 'config', seq, snapshot: fullSnapshotOf(previous, 'restore', previousSecrets), replace: true }));
      return outcome;
    }
    this.good = { config: next, secrets: snapshot.secrets ?? null, source: 'control-plane', appliedAt: Date.now() };
    metrics.snapshot('applied');
    metrics.setConfigVersion(next.version);
    logger.info({ version: next.version, history: next.historyId, workers: this.workers.size }, 'snapshot applied');
    this.cache?.save({ version: next.version, historyId: next.historyId, config: next.config, secrets: toSecrets(keyMaterialOf(snapshot.secrets)) });
    return outcome;
  }

  // --- workers ---

  /** SIGHUP: every worker reopens its access log file (logrotate moved it). */
  reopenLogs(): void {
    for (const w of this.workers.values()) if (w.initialized) this.send(w, { kind: 'reopen' });
  }

  private send(state: WorkerState, message: Body<ToWorker>): void {
    if (state.worker.isConnected()) state.worker.send({ lb: LB, ...message });
  }

  /** Sends to every initialized worker and resolves once each has answered (or died). */
  private broadcast(build: (seq: number) => Body<ToWorker>): Promise<PushOutcome> {
    const seq = ++this.seq;
    const targets = [...this.workers.values()].filter((w) => w.initialized && w.worker.isConnected());
    if (targets.length === 0) return Promise.resolve({ ok: true });
    return new Promise((resolve) => {
      // A hung worker (an endless loop, a stopped process) would hold every later push and ACK of
      // the node: past the deadline it is killed, its exit settles it, and it is replaced.
      const timer = setTimeout(() => {
        for (const id of this.broadcasts.get(seq)?.waiting ?? []) {
          this.logger.error({ worker: id, timeoutMs: this.options.workerApplyTimeoutMs ?? 10_000 }, 'worker did not apply a push in time: replacing it');
          this.workers.get(id)?.worker.process.kill('SIGKILL');
        }
      }, this.options.workerApplyTimeoutMs ?? 10_000);
      const done = (outcome: PushOutcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      this.broadcasts.set(seq, { waiting: new Set(targets.map((t) => t.worker.id)), errors: [], resolve: done });
      const message = build(seq);
      for (const t of targets) this.send(t, message);
    });
  }

  /** Asks every serving worker; resolves with the answers that came within the timeout. */
  private query<T>(build: (seq: number) => Body<ToWorker>, only?: number): Promise<T[]> {
    const seq = ++this.seq;
    let targets = [...this.workers.values()].filter((w) => w.listening && w.worker.isConnected());
    if (only !== undefined) targets = targets.slice(0, only);
    if (targets.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const q = this.queries.get(seq);
        this.queries.delete(seq);
        q?.resolve(q.answers);
      }, this.options.workerQueryTimeoutMs ?? 2_000);
      const done = (answers: unknown[]) => {
        clearTimeout(timer);
        resolve(answers as T[]);
      };
      this.queries.set(seq, { waiting: new Set(targets.map((t) => t.worker.id)), answers: [], resolve: done });
      const message = build(seq);
      for (const t of targets) this.send(t, message);
    });
  }

  private settle(seq: number, workerId: number, ok: boolean, error?: string): void {
    const b = this.broadcasts.get(seq);
    if (b === undefined) {
      const state = this.workers.get(workerId);
      if (!ok && state !== undefined && state.initSeq === seq) this.initFailed(state, error);
      return;
    }
    if (!b.waiting.delete(workerId)) return;
    if (!ok) b.errors.push(error ?? 'worker refused the snapshot');
    if (b.waiting.size > 0) return;
    this.broadcasts.delete(seq);
    b.resolve(b.errors.length === 0 ? { ok: true } : { ok: false, error: b.errors[0]! });
  }

  private answer(seq: number, workerId: number, value: unknown): void {
    const q = this.queries.get(seq);
    if (q === undefined || !q.waiting.delete(workerId)) return;
    if (value !== undefined) q.answers.push(value);
    if (q.waiting.size > 0) return;
    this.queries.delete(seq);
    q.resolve(q.answers);
  }

  /**
   * A worker that cannot apply its `init` would serve a config its siblings do not run (or none):
   * it is killed like one that fails to start — start() fails while the node starts, and later its
   * exit replaces it with the restart backoff.
   */
  private initFailed(state: WorkerState, error: string | undefined): void {
    const id = state.worker.id;
    this.logger.error({ worker: id, reason: error }, 'a worker could not apply its initial snapshot: replacing it');
    state.failed = true;
    state.initialized = false;
    state.listening = false;
    this.metrics.setWorkers(this.serving());
    const starting = this.started.get(id);
    if (starting !== undefined) {
      this.started.delete(id);
      starting.reject(new Error(`worker ${id} could not apply its initial snapshot: ${error ?? 'refused'}`));
    }
    state.worker.process.kill('SIGKILL');
  }

  /** Starts one worker; resolves once it listens. */
  private fork(): Promise<void> {
    const worker = cluster.fork();
    const state: WorkerState = { worker, initialized: false, initSeq: 0, failed: false, listening: false, startedAt: Date.now() };
    this.workers.set(worker.id, state);
    // A worker that just died stays "connected" until this process reads the end of its pipe; a
    // message sent in between fails at once (EPIPE), reported as the worker's 'error'. Unheard,
    // that error would end the primary and every other worker with it. Its 'exit' follows and
    // settles whatever it owed; this only has to be survived.
    worker.on('error', (err: Error) => this.logger.warn({ worker: worker.id, err: err.message }, 'a message to a worker failed'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.started.delete(worker.id);
        reject(new Error(`worker ${worker.id} did not start listening in time`));
      }, this.options.workerStartTimeoutMs ?? 30_000);
      this.started.set(worker.id, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  private onWorkerMessage(worker: Worker, message: unknown): void {
    if (!isOurs(message)) return;
    const state = this.workers.get(worker.id);
    if (state === undefined) return;
    const m = message as FromWorker;
    if (state.failed) return;
    switch (m.kind) {
      case 'hello': {
        // Everything sent from here on follows init, so the worker sees pushes in order.
        state.initialized = true;
        state.initSeq = ++this.seq;
        const snapshot = this.latest === undefined ? null : fullSnapshotOf(this.latest, 'init', this.latestSecrets);
        this.send(state, { kind: 'init', seq: state.initSeq, snapshot, health: fullHealth(this.health) });
        return;
      }
      case 'applied':
        return this.settle(m.seq, worker.id, m.ok, m.error);
      case 'listening':
        state.listening = true;
        this.proxyAddress ??= { address: m.address, port: m.port, family: m.address.includes(':') ? 'IPv6' : 'IPv4' };
        this.metrics.setWorkers(this.serving());
        this.started.get(worker.id)?.resolve();
        this.started.delete(worker.id);
        return;
      case 'listenError':
        this.started.get(worker.id)?.reject(new Error(`worker ${worker.id} cannot listen: ${m.error}`));
        this.started.delete(worker.id);
        return;
      case 'metrics':
        return this.answer(m.seq, worker.id, m.metrics);
      case 'describe':
        return this.answer(m.seq, worker.id, m.view);
      case 'ejection':
        // Outlier counts are per worker, but an ejection holds for the whole node: every other
        // worker adopts it (adopting never reports back, so this does not echo).
        for (const other of this.workers.values()) {
          if (other.worker.id !== worker.id && other.initialized) this.send(other, { kind: 'ejection', ejection: m.ejection });
        }
        return this.discovery?.report(m.ejection);
    }
  }

  private onWorkerExit(worker: Worker, code: number | null, signal: string | null): void {
    const state = this.workers.get(worker.id);
    if (state === undefined) return;
    this.workers.delete(worker.id);
    this.metrics.setWorkers(this.serving());
    for (const seq of [...this.broadcasts.keys()]) this.settle(seq, worker.id, true);
    for (const seq of [...this.queries.keys()]) this.answer(seq, worker.id, undefined);
    const starting = this.started.get(worker.id);
    if (starting !== undefined) {
      this.started.delete(worker.id);
      starting.reject(new Error(`worker ${worker.id} exited while starting (code ${code}, signal ${signal})`));
    }
    if (this.draining || !this.up) return;
    // A worker that lived a while starts the backoff afresh; one that keeps dying waits longer.
    this.deathsInARow = Date.now() - state.startedAt > 10_000 ? 0 : this.deathsInARow + 1;
    const delay = Math.min(5_000, 100 * 2 ** this.deathsInARow);
    this.logger.error({ worker: worker.id, workerPid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died; starting a new one');
    this.metrics.workerRestarted();
    setTimeout(() => {
      if (this.draining) return;
      this.fork().catch((err: unknown) => this.logger.error({ err }, 'a restarted worker failed to start'));
    }, delay);
  }

  private serving(): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.listening) n++;
    return n;
  }

  // --- admin ---

  private async aggregatedMetrics(): Promise<string> {
    return (await this.aggregated()).metrics();
  }

  /** The workers' and the primary's metrics together, as JSON (traffic reports). */
  private async aggregatedJson(): Promise<MetricJson[]> {
    return (await (await this.aggregated()).getMetricsAsJSON()) as MetricJson[];
  }

  private async aggregated(): Promise<Registry> {
    const fromWorkers = await this.query<object[]>((seq) => ({ kind: 'metrics', seq }));
    const own = await this.metrics.registry.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([...fromWorkers, own] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
  }

  /** A serving worker's table summary; undefined when no worker answers. */
  private async describe(): Promise<ConfigView | undefined> {
    const [view] = await this.query<ConfigView>((seq) => ({ kind: 'describe', seq }), 1);
    const good = this.good;
    const source = good?.source ?? null;
    const appliedAt = good === undefined ? null : new Date(good.appliedAt).toISOString();
    // The table is the worker's; where it came from and when is the primary's to say.
    return view === undefined ? undefined : { ...view, source, appliedAt };
  }

  // --- shutdown ---

  /**
   * Graceful stop: /readyz turns 503, the control plane stream closes, every worker drains (stops
   * accepting, finishes requests in flight within the drain timeout) and exits; then the cache
   * writer and the admin port close.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.draining = true;
    this.reporter?.stop();
    this.discovery?.stop();
    const grace = this.options.drainTimeoutMs ?? 10_000;
    const exits = [...this.workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.worker.isDead()) return resolve();
          const timer = setTimeout(() => w.worker.process.kill('SIGKILL'), grace + 5_000);
          w.worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          // A worker that has not said hello may not be listening for messages yet: a signal reaches it either way.
          if (w.initialized) this.send(w, { kind: 'drain', graceMs: grace });
          else w.worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    await this.cache?.flush();
    await drainServer(this.adminServer, 1_000);
  }
}
