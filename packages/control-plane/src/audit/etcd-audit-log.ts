/** AuditLog on etcd: `<prefix>/audit/<id>` → AuditEntry JSON; ids sort by time (audit-log.ts). */
import { Range, type Etcd3 } from 'etcd3';
import { guarded } from '../store/etcd-client.js';
import { EtcdKeys } from '../store/keys.js';
import { auditId, matches, type AuditEntry, type AuditLog, type AuditPage, type AuditQuery, type NewAuditEntry } from './audit-log.js';

/** Keys read per round trip while filtering, and round trips per page at most. */
const CHUNK = 500;
const MAX_CHUNKS = 10;
/** Sorts after every id that starts with a given time (`<time>_<hex>`): '_' < '`'. */
const AFTER_TIME = '`';

export class EtcdAuditLog implements AuditLog {
  private readonly prefix: string;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly deadlineMs = 4_000,
  ) {
    this.prefix = new EtcdKeys(prefix).auditPrefix;
  }

  append(entry: NewAuditEntry): Promise<AuditEntry> {
    return guarded('writing an audit entry', this.deadlineMs, async () => {
      const stored: AuditEntry = { ...entry, id: auditId(entry.at) };
      await this.client.put(this.prefix + stored.id).value(JSON.stringify(stored));
      return stored;
    });
  }

  /**
   * Newest first, read in chunks from the end of the time range. Filters other than time are
   * applied while reading; a page that ran out of chunks before filling up says where to go on.
   */
  list(query: AuditQuery): Promise<AuditPage> {
    return guarded('listing the audit trail', this.deadlineMs, async () => {
      const start = this.prefix + (query.since ?? '');
      let end = query.until === undefined ? `${this.prefix}\uffff` : this.prefix + query.until + AFTER_TIME;
      if (query.before !== undefined && this.prefix + query.before < end) end = this.prefix + query.before;
      const entries: AuditEntry[] = [];
      for (let chunk = 0; chunk < MAX_CHUNKS && end > start; chunk++) {
        const values = await this.client.getAll().inRange({ start, end }).sort('Key', 'Descend').limit(CHUNK).strings();
        const keys = Object.keys(values).sort().reverse();
        for (const key of keys) {
          const entry = JSON.parse(values[key]!) as AuditEntry;
          if (!matches(entry, query)) continue;
          entries.push(entry);
          if (entries.length === query.limit) return { entries, next: entry.id };
        }
        if (keys.length < CHUNK) return { entries };
        end = keys[keys.length - 1]!;
      }
      // Out of chunks: more may match further back.
      return end > start ? { entries, next: end.slice(this.prefix.length) } : { entries };
    });
  }

  prune(keep: number): Promise<number> {
    return guarded('pruning the audit trail', this.deadlineMs, async () => {
      const count = await this.client.getAll().prefix(this.prefix).count();
      const excess = Math.min(count - keep, 10_000);
      if (excess <= 0) return 0;
      const oldest = await this.client.getAll().prefix(this.prefix).sort('Key', 'Ascend').limit(excess).keys();
      const last = oldest[oldest.length - 1];
      if (last === undefined) return 0;
      await this.client.delete().range(new Range(oldest[0]!, `${last}\u0000`));
      return oldest.length;
    });
  }
}
