/**
 * Central active health checking. Every replica runs one, but only the elected leader probes:
 * on election it loads the recorded health (so statuses survive a hand-over), starts the
 * scheduler over every checked backend of the config, and writes each result through the
 * threshold state machine into the store. On losing leadership it stops at once.
 *
 * Writes: a result is written when it moves the status, flips the outcome, is still counting
 * towards a threshold, or the record was last written `refreshMs` ago; a steady backend costs one
 * etcd write per `refreshMs`, not one per probe. Records of backends that left the config (or
 * whose pool stopped checking) are deleted, which data planes see as `unknown`.
 */
import { createHash } from 'node:crypto';
import type { Config, HealthCheckType, Logger, Pool, TlsSecrets, VersionedConfig } from '@lb/shared';
import type { ConfigSource } from '../push/config-feed.js';
import type { HealthMetrics } from './health-metrics.js';
import { initialRecord, nextRecord, type HealthRecord } from './health-record.js';
import type { HealthStore } from './health-store.js';
import type { Leadership } from './leader-election.js';
import type { Probe, ProbeResult, ProbeTarget, ProbeTls } from './probe.js';
import { ProbeScheduler, targetKey } from './scheduler.js';

export interface HealthCheckerOptions {
  config: ConfigSource;
  leadership: Leadership;
  store: HealthStore;
  probes: Record<HealthCheckType, Probe>;
  replica: string;
  logger: Logger;
  metrics?: HealthMetrics;
  random?: () => number;
  now?: () => number;
  /** Longest time a steady record goes unwritten. Default 10000. */
  refreshMs?: number;
}

/**
 * Every backend the config asks to probe: pools with a healthCheck, backends not disabled; with
 * the pool's TLS (its client certificate's key from `keys`, by certificate name) when it has one.
 */
export function probeTargets(config: Config, keys: ReadonlyMap<string, string> = new Map()): ProbeTarget[] {
  const targets: ProbeTarget[] = [];
  for (const [pool, p] of Object.entries(config.pools)) {
    if (p.healthCheck === undefined) continue;
    const tls = probeTls(config, p.tls, keys);
    for (const b of p.backends) {
      if (b.state !== 'disabled') targets.push({ pool, backendId: b.id, address: b.address, check: p.healthCheck, ...(tls !== undefined ? { tls } : {}) });
    }
  }
  return targets;
}

function probeTls(config: Config, tls: Pool['tls'], keys: ReadonlyMap<string, string>): ProbeTls | undefined {
  if (tls === undefined) return undefined;
  const ca = tls.caCertificate === undefined ? undefined : config.certificates?.[tls.caCertificate]?.certificate;
  const cert = tls.clientCertificate === undefined ? undefined : config.certificates?.[tls.clientCertificate]?.certificate;
  const key = tls.clientCertificate === undefined ? undefined : keys.get(tls.clientCertificate);
  const id = createHash('sha256')
    .update(JSON.stringify([ca, cert, key, tls.serverName, tls.verify]))
    .digest('hex');
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    verify: tls.verify,
    id,
  };
}

export class HealthChecker {
  private readonly scheduler: ProbeScheduler;
  private readonly records = new Map<string, HealthRecord>();
  private readonly lastWrite = new Map<string, number>();
  private targets = new Map<string, ProbeTarget>();
  /** A config was seen: until then `targets` is empty for want of knowing, not because backends left. */
  private configured = false;
  /** Bumped on every leadership change: work started under an older term is dropped. */
  private term = 0;
  private unsubscribe: (() => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly options: HealthCheckerOptions) {
    this.now = options.now ?? Date.now;
    this.scheduler = new ProbeScheduler({
      probes: options.probes,
      replica: options.replica,
      random: options.random ?? Math.random,
      onResult: (target, result) => this.onResult(target, result),
    });
  }

  start(): void {
    this.unsubscribe = this.options.config.subscribe((c) => this.onConfig(c));
    const latest = this.options.config.latest();
    if (latest) this.onConfig(latest);
    this.options.leadership.onChange((leader) => (leader ? void this.lead() : this.follow()));
    if (this.options.leadership.isLeader) void this.lead();
  }

  stop(): void {
    this.unsubscribe?.();
    this.follow();
  }

  private onConfig(config: VersionedConfig): void {
    // A source that carries secrets (tls/snapshot-secrets.ts) gives pools' client keys to their probes.
    const secrets = (config as { secrets?: TlsSecrets }).secrets;
    const keys = new Map((secrets?.privateKeys ?? []).map((k) => [k.certificate, k.privateKeyPem]));
    this.targets = new Map(probeTargets(config.config, keys).map((t) => [targetKey(t.pool, t.backendId), t]));
    this.configured = true;
    if (!this.options.leadership.isLeader) return;
    for (const [key, record] of this.records) {
      const t = this.targets.get(key);
      if (t === undefined) this.forget(record.pool, record.backend);
    }
    this.scheduler.setTargets([...this.targets.values()]);
  }

  private async lead(): Promise<void> {
    const term = ++this.term;
    this.options.metrics?.leader.set(1);
    let existing: HealthRecord[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        existing = (await this.options.store.list()).records;
        break;
      } catch (err) {
        if (attempt >= 2) {
          // Start from unknown rather than not probing at all.
          this.options.logger.warn({ err: (err as Error).message }, 'cannot read recorded health; probing from scratch');
          break;
        }
      }
    }
    if (term !== this.term) return;
    this.records.clear();
    this.lastWrite.clear();
    for (const r of existing) this.records.set(targetKey(r.pool, r.backend), r);
    // Elected before the first config arrived: nothing is known to have left yet (onConfig forgets
    // what did once it arrives). Deleting now would make every unhealthy backend routable.
    if (this.configured) for (const r of existing) if (!this.targets.has(targetKey(r.pool, r.backend))) this.forget(r.pool, r.backend);
    this.scheduler.setTargets([...this.targets.values()]);
    this.scheduler.start();
    this.options.logger.info({ targets: this.scheduler.size }, 'health checking started');
  }

  private follow(): void {
    this.term++;
    this.options.metrics?.leader.set(0);
    this.scheduler.stop();
    this.records.clear();
    this.lastWrite.clear();
  }

  private forget(pool: string, backend: string): void {
    this.options.metrics?.forget(pool, backend);
    const key = targetKey(pool, backend);
    this.records.delete(key);
    this.lastWrite.delete(key);
    const fence = this.options.leadership.fence();
    if (fence === undefined) return;
    this.options.store
      .remove(pool, backend, fence)
      .catch((err: unknown) => this.options.logger.warn({ pool, backend, err: (err as Error).message }, 'cannot remove stale health'));
  }

  private onResult(target: ProbeTarget, result: ProbeResult): void {
    this.options.metrics?.probed(target.pool, target.backendId, result.ok, result.latencyMs);
    const key = targetKey(target.pool, target.backendId);
    if (this.targets.get(key) === undefined) return;
    const previous = this.records.get(key) ?? initialRecord(target.pool, target.backendId);
    const now = this.now();
    const next = nextRecord(previous, { at: new Date(now).toISOString(), ok: result.ok, latencyMs: result.latencyMs, detail: result.detail }, target.check);
    this.records.set(key, next);
    const counting = next.consecutive <= Math.max(target.check.healthyThreshold, target.check.unhealthyThreshold);
    const moved = next.status !== previous.status || previous.lastProbe?.ok !== result.ok;
    const stale = now - (this.lastWrite.get(key) ?? 0) >= (this.options.refreshMs ?? 10_000);
    if (!(moved || counting || stale)) return;
    if (next.status !== previous.status)
      this.options.logger.info({ pool: target.pool, backend: target.backendId, status: next.status, detail: result.detail }, 'backend health changed');
    const fence = this.options.leadership.fence();
    if (fence === undefined) return;
    this.lastWrite.set(key, now);
    const term = this.term;
    this.options.store.put(next, fence).then(
      (written) => {
        if (!written && term === this.term) this.options.logger.warn('health write refused: this replica no longer holds the election key');
      },
      (err: unknown) => {
        this.lastWrite.delete(key);
        this.options.logger.warn({ pool: target.pool, backend: target.backendId, err: (err as Error).message }, 'cannot record health');
      },
    );
  }
}
