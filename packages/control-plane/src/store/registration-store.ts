/**
 * Self-registered backends (PUT /v1/pools/{pool}/backends/{id} with `ttlSeconds`): service
 * discovery for autoscaled pools. Each lives under /lb/registrations/<pool>/<id> bound to its own
 * etcd lease and vanishes when the lease is not renewed (POST .../keepalive) within its TTL.
 *
 * Registrations are not config: they never create a config version, never appear in history, and
 * a rollback leaves them alone (like health). Every replica merges them into the snapshots it
 * pushes as members of their pool (see push/merged-config.ts).
 */
import type { Etcd3 } from 'etcd3';
import type { Backend, Logger } from '@lb/shared';
import { guarded } from './etcd-client.js';
import { EtcdKeys } from './keys.js';

export interface Registration {
  pool: string;
  backend: Backend;
  ttlSeconds: number;
  /** ISO 8601 of the first registration (kept across re-registrations and keepalives). */
  registeredAt: string;
  /** The etcd lease, as a decimal string. */
  lease: string;
}

export interface RegistrationStore {
  /** Creates or replaces the registration on a fresh lease (the old lease, if any, is revoked). */
  register(pool: string, backend: Backend, ttlSeconds: number): Promise<Registration>;
  /** Renews the lease; undefined when there is no such registration (expired or never made). */
  keepalive(pool: string, id: string): Promise<Registration | undefined>;
  /** Removes it; false when there was none. */
  deregister(pool: string, id: string): Promise<boolean>;
  get(pool: string, id: string): Promise<Registration | undefined>;
  list(pool?: string): Promise<Registration[]>;
  /** `onChange` after every change and every watch reconnect; the owner re-lists. */
  watch(onChange: () => void): () => void;
}

export class EtcdRegistrationStore implements RegistrationStore {
  private readonly prefix: string;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly logger: Logger,
    private readonly deadlineMs = 4_000,
  ) {
    this.prefix = new EtcdKeys(prefix).registrationsPrefix;
  }

  private key(pool: string, id: string): string {
    return `${this.prefix}${pool}/${id}`;
  }

  get(pool: string, id: string): Promise<Registration | undefined> {
    return guarded(`reading registration ${pool}/${id}`, this.deadlineMs, async () => {
      const value = await this.client.get(this.key(pool, id)).string();
      return value === null ? undefined : (JSON.parse(value) as Registration);
    });
  }

  register(pool: string, backend: Backend, ttlSeconds: number): Promise<Registration> {
    return guarded(`registering ${pool}/${backend.id}`, this.deadlineMs, async () => {
      const key = this.key(pool, backend.id);
      const before = await this.client.get(key).string();
      const previous = before === null ? undefined : (JSON.parse(before) as Registration);
      const lease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
      const leaseId = await lease.grant();
      const registration: Registration = { pool, backend, ttlSeconds, registeredAt: previous?.registeredAt ?? new Date().toISOString(), lease: leaseId };
      await this.client.put(key).value(JSON.stringify(registration)).lease(leaseId);
      lease.release();
      if (previous !== undefined && previous.lease !== leaseId) {
        // The key moved to the new lease, so revoking the old one deletes nothing else.
        await this.client.leaseClient.leaseRevoke({ ID: previous.lease }).catch(() => undefined);
      }
      return registration;
    });
  }

  keepalive(pool: string, id: string): Promise<Registration | undefined> {
    return guarded(`renewing registration ${pool}/${id}`, this.deadlineMs, async () => {
      const value = await this.client.get(this.key(pool, id)).string();
      if (value === null) return undefined;
      const registration = JSON.parse(value) as Registration;
      const stream = await this.client.leaseClient.leaseKeepAlive();
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          stream.on('data', resolve);
          stream.on('error', reject);
          stream.write({ ID: registration.lease });
        });
        // TTL 0: the lease expired between the read and the renewal.
        return res.TTL === '0' ? undefined : registration;
      } finally {
        stream.end();
      }
    });
  }

  deregister(pool: string, id: string): Promise<boolean> {
    return guarded(`removing registration ${pool}/${id}`, this.deadlineMs, async () => {
      const value = await this.client.get(this.key(pool, id)).string();
      if (value === null) return false;
      const registration = JSON.parse(value) as Registration;
      await this.client.leaseClient.leaseRevoke({ ID: registration.lease }).catch(() => undefined);
      await this.client.delete().key(this.key(pool, id));
      return true;
    });
  }

  list(pool?: string): Promise<Registration[]> {
    return guarded('listing registrations', this.deadlineMs, async () => {
      const values = await this.client
        .getAll()
        .prefix(pool === undefined ? this.prefix : `${this.prefix}${pool}/`)
        .strings();
      return Object.values(values)
        .map((v) => JSON.parse(v) as Registration)
        .sort((a, b) => (a.pool === b.pool ? a.backend.id.localeCompare(b.backend.id) : a.pool.localeCompare(b.pool)));
    });
  }

  watch(onChange: () => void): () => void {
    const watcher = this.client.watch().prefix(this.prefix).watcher();
    watcher.on('connected', () => onChange());
    watcher.on('put', () => onChange());
    watcher.on('delete', () => onChange());
    watcher.on('error', (err) => this.logger.warn({ err: err.message }, 'registration watch error'));
    return () => void watcher.cancel().catch(() => undefined);
  }
}

/** For unit tests: registrations that never expire unless `expire` is called. */
export class MemoryRegistrationStore implements RegistrationStore {
  readonly items = new Map<string, Registration>();
  private readonly watchers = new Set<() => void>();
  private nextLease = 1;

  private changed(): void {
    for (const w of this.watchers) queueMicrotask(w);
  }

  async register(pool: string, backend: Backend, ttlSeconds: number): Promise<Registration> {
    const previous = this.items.get(`${pool}/${backend.id}`);
    const r: Registration = { pool, backend, ttlSeconds, registeredAt: previous?.registeredAt ?? new Date().toISOString(), lease: String(this.nextLease++) };
    this.items.set(`${pool}/${backend.id}`, r);
    this.changed();
    return structuredClone(r);
  }

  async keepalive(pool: string, id: string): Promise<Registration | undefined> {
    const r = this.items.get(`${pool}/${id}`);
    return r && structuredClone(r);
  }

  async deregister(pool: string, id: string): Promise<boolean> {
    const had = this.items.delete(`${pool}/${id}`);
    if (had) this.changed();
    return had;
  }

  expire(pool: string, id: string): void {
    if (this.items.delete(`${pool}/${id}`)) this.changed();
  }

  async get(pool: string, id: string): Promise<Registration | undefined> {
    const r = this.items.get(`${pool}/${id}`);
    return r && structuredClone(r);
  }

  async list(pool?: string): Promise<Registration[]> {
    return [...this.items.values()].filter((r) => pool === undefined || r.pool === pool).map((r) => structuredClone(r));
  }

  watch(onChange: () => void): () => void {
    this.watchers.add(onChange);
    queueMicrotask(onChange);
    return () => this.watchers.delete(onChange);
  }
}
