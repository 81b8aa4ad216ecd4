/**
 * What the data planes run: the current config version with the self-registered (TTL) backends
 * merged into their pools. Registrations are not config, so merging them keeps the version and
 * bumps `generation` instead; the stream server pushes a snapshot again when either grows.
 *
 * A registration is left out while its pool does not exist or its id or address is already used
 * by a configured backend of the pool: config wins, and a snapshot never fails validation because
 * of a registration.
 */
import type { Config, Logger, VersionedConfig } from '@lb/shared';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import type { RegistrationStore, Registration } from '../store/registration-store.js';
import type { ConfigSource } from './config-feed.js';

/** A pushed config: `generation` counts changes of the merged registrations (0: none merged yet). */
export interface MergedConfig extends VersionedConfig {
  generation: number;
}

export function mergeRegistrations(config: Config, registrations: readonly Registration[]): Config {
  if (registrations.length === 0) return config;
  const merged = structuredClone(config);
  for (const r of registrations) {
    const pool = merged.pools[r.pool];
    if (!Object.hasOwn(merged.pools, r.pool) || pool === undefined) continue;
    const address = r.backend.address.toLowerCase();
    if (pool.backends.some((b) => b.id === r.backend.id || b.address.toLowerCase() === address)) continue;
    pool.backends.push(structuredClone(r.backend));
  }
  return merged;
}

export interface MergedConfigSourceOptions {
  config: ConfigSource;
  registrations: RegistrationStore;
  logger: Logger;
  retryDelayMs?: number;
}

export class MergedConfigSource implements ConfigSource {
  private registrations: Registration[] = [];
  private registrationsJson = '[]';
  private generation = 0;
  /** The registrations were read once: before that a pool's registered backends are unknown, not absent. */
  private listed = false;
  private current: MergedConfig | undefined;
  private readonly listeners = new Set<(config: VersionedConfig) => void>();
  private offs: Array<() => void> = [];
  /** A registration change seen while a list runs lists once more after it. */
  private readonly lists = new CoalescedRefresh(
    () => this.listOnce(),
    () => this.stopped,
  );
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: MergedConfigSourceOptions) {}

  start(): void {
    this.offs.push(this.options.config.subscribe(() => this.publish()));
    this.offs.push(this.options.registrations.watch(() => void this.lists.request()));
    this.publish();
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs) off();
    clearTimeout(this.retryTimer);
    this.listeners.clear();
  }

  latest(): MergedConfig | undefined {
    return this.current;
  }

  subscribe(listener: (config: VersionedConfig) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One list of the registrations, published when it changed; false when it failed (a retry is scheduled). */
  private async listOnce(): Promise<boolean> {
    try {
      const list = await this.options.registrations.list();
      const json = JSON.stringify(list.map((r) => [r.pool, r.backend]));
      const first = !this.listed;
      this.listed = true;
      if (json !== this.registrationsJson) {
        this.registrations = list;
        this.registrationsJson = json;
        this.generation++;
        this.publish();
      } else if (first) this.publish();
      return true;
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'cannot read registrations; retrying');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.lists.request(), this.options.retryDelayMs ?? 1_000);
      return false;
    }
  }

  private publish(): void {
    // Nothing before the first list: a snapshot without the registered backends would drop them
    // from every data plane, and the health leader would delete their health.
    if (this.stopped || !this.listed) return;
    const base = this.options.config.latest();
    if (base === undefined) return;
    const before = this.current;
    const config = mergeRegistrations(base.config, this.registrations);
    if (before && before.version === base.version && JSON.stringify(before.config) === JSON.stringify(config)) return;
    const next: MergedConfig = { version: base.version, config, generation: this.generation };
    this.current = next;
    for (const listener of [...this.listeners]) {
      try {
        listener(next);
      } catch (err) {
        this.options.logger.error({ err }, 'config listener failed');
      }
    }
  }
}
