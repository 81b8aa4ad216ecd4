/**
 * Ejections reported by data planes (NodeReport): each node ejects on its own traffic, at once,
 * and tells its control plane afterwards. The replica holding the node's stream records them under
 * /lb/ejections/<pool>/<backend>/<node> on its own lease, so GET /v1/pools/{pool}/health on any
 * replica shows them per node, and they vanish with the replica. Expired ones are not shown.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Logger, NodeReport } from '@lb/shared';
import { guarded } from '../store/etcd-client.js';
import { EtcdKeys } from '../store/keys.js';

export interface NodeEjection {
  node: string;
  reason: string;
  /** ISO 8601: when the node lets the backend back in. */
  until: string;
  /** ISO 8601: when the report arrived. */
  reportedAt: string;
}

export interface NodeReportSink {
  /** Never throws and never blocks the stream: recording happens in the background. */
  record(nodeId: string, report: NodeReport): void;
}

export interface EjectionReader {
  /** Current ejections of one pool, by backend id. */
  list(pool: string): Promise<Map<string, NodeEjection[]>>;
}

export class EtcdEjectionStore implements NodeReportSink, EjectionReader {
  private readonly prefix: string;
  private lease: Lease | undefined;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly logger: Logger,
    private readonly ttlSeconds = 10,
    private readonly deadlineMs = 4_000,
  ) {
    this.prefix = new EtcdKeys(prefix).ejectionsPrefix;
  }

  private currentLease(): Lease {
    if (this.lease) return this.lease;
    const lease = this.client.lease(this.ttlSeconds);
    lease.on('lost', () => {
      if (this.lease === lease) this.lease = undefined;
    });
    this.lease = lease;
    return lease;
  }

  record(nodeId: string, report: NodeReport): void {
    for (const e of report.ejections ?? []) {
      const key = `${this.prefix}${e.pool}/${e.backendId}/${nodeId}`;
      const work = e.ejected
        ? this.currentLease()
            .put(key)
            .value(
              JSON.stringify({
                node: nodeId,
                reason: e.reason,
                until: new Date(e.untilUnixMs).toISOString(),
                reportedAt: new Date().toISOString(),
              } satisfies NodeEjection),
            )
            .then(() => undefined)
        : this.client
            .delete()
            .key(key)
            .then(() => undefined);
      guarded('recording an ejection', this.deadlineMs, () => work).catch((err: unknown) =>
        this.logger.warn({ node: nodeId, pool: e.pool, backend: e.backendId, err: (err as Error).message }, 'cannot record an ejection report'),
      );
    }
  }

  list(pool: string): Promise<Map<string, NodeEjection[]>> {
    return guarded('listing ejections', this.deadlineMs, async () => {
      const base = `${this.prefix}${pool}/`;
      const values = await this.client.getAll().prefix(base).strings();
      const now = Date.now();
      const out = new Map<string, NodeEjection[]>();
      for (const [key, value] of Object.entries(values)) {
        const backend = key.slice(base.length).split('/')[0]!;
        const e = JSON.parse(value) as NodeEjection;
        if (Date.parse(e.until) <= now) continue;
        const list = out.get(backend) ?? [];
        list.push(e);
        out.set(backend, list);
      }
      for (const list of out.values()) list.sort((a, b) => a.node.localeCompare(b.node));
      return out;
    });
  }

  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => lease.release());
  }
}

/** For unit tests. */
export class MemoryEjectionStore implements NodeReportSink, EjectionReader {
  readonly items = new Map<string, Map<string, NodeEjection>>();

  record(nodeId: string, report: NodeReport): void {
    for (const e of report.ejections ?? []) {
      const key = `${e.pool}/${e.backendId}`;
      const perNode = this.items.get(key) ?? new Map<string, NodeEjection>();
      if (e.ejected)
        perNode.set(nodeId, { node: nodeId, reason: e.reason, until: new Date(e.untilUnixMs).toISOString(), reportedAt: new Date().toISOString() });
      else perNode.delete(nodeId);
      this.items.set(key, perNode);
    }
  }

  async list(pool: string): Promise<Map<string, NodeEjection[]>> {
    const out = new Map<string, NodeEjection[]>();
    const now = Date.now();
    for (const [key, perNode] of this.items) {
      const [p, backend] = key.split('/') as [string, string];
      if (p !== pool) continue;
      const list = [...perNode.values()].filter((e) => Date.parse(e.until) > now);
      if (list.length > 0) out.set(backend, list);
    }
    return out;
  }
}
