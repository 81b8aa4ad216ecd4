/**
 * Turns answered requests into audit entries, each also one structured log line (`msg: "audit"`):
 * - every write (POST, PUT, PATCH, DELETE on a route that exists), committed or failed, with the
 *   actor, the caller's address, the request id, the version and the change message. Dry runs
 *   change nothing and are not recorded.
 * - every refused attempt (401, 403), on any route. So that a flood of them can neither fill etcd
 *   nor push real entries out of the retention window, the attempts of one address, actor and
 *   status are recorded once per window: the first at once, the rest as one entry with `count`
 *   when the window ends.
 * Recording happens after the answer went out and never fails a request: an etcd that is down
 * loses the entry (the log line stays).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '@lb/shared';
import type { AuditLog, NewAuditEntry } from './audit-log.js';

/** What a handler knows about its write that the hook cannot see in the answer. */
export interface AuditNote {
  version?: number;
  committed?: boolean;
  message?: string;
  dryRun?: boolean;
  /** The problem code, set when the answer is an error. */
  code?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    audit: AuditNote;
  }
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface AuditRecorderOptions {
  log: AuditLog;
  /** Absent: no log lines (unit tests). */
  logger?: Logger;
  /** Refused attempts of one address, actor and status within this window fold into one entry. */
  refusalWindowMs?: number;
  now?: () => Date;
}

interface RefusalWindow {
  /** Attempts after the first, not yet recorded. */
  folded: number;
  latest: NewAuditEntry;
  timer: NodeJS.Timeout;
}

export class AuditRecorder {
  private readonly windows = new Map<string, RefusalWindow>();
  private readonly refusalWindowMs: number;
  private readonly now: () => Date;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: AuditRecorderOptions) {
    this.refusalWindowMs = options.refusalWindowMs ?? 10_000;
    this.now = options.now ?? (() => new Date());
  }

  install(app: FastifyInstance): void {
    app.decorateRequest('audit', null as unknown as AuditNote);
    app.addHook('onRequest', async (request) => {
      request.audit = {};
    });
    app.addHook('onResponse', async (request, reply) => this.answered(request, reply));
  }

  private answered(request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    const note = request.audit ?? {};
    const entry: NewAuditEntry = {
      at: this.now().toISOString(),
      kind: status === 401 || status === 403 ? 'refused' : 'write',
      actor: request.principal?.name ?? null,
      ...(request.principal ? { role: request.principal.role } : {}),
      source: request.ip,
      requestId: String(request.id),
      method: request.method,
      path: request.url.split('?')[0] ?? request.url,
      status,
      ...(note.code !== undefined ? { code: note.code } : {}),
      ...(note.version !== undefined ? { version: note.version } : {}),
      ...(note.committed !== undefined ? { committed: note.committed } : {}),
      ...(note.message !== undefined ? { message: note.message } : {}),
    };
    if (entry.kind === 'refused') return this.refused(entry);
    if (!WRITE_METHODS.has(request.method) || request.is404 || request.principal === null || note.dryRun) return;
    this.record(entry);
  }

  private refused(entry: NewAuditEntry): void {
    const key = `${entry.source}\u0000${entry.actor ?? ''}\u0000${entry.status}`;
    const open = this.windows.get(key);
    if (open) {
      open.folded++;
      open.latest = entry;
      return;
    }
    this.record({ ...entry, count: 1 });
    const timer = setTimeout(() => this.closeWindow(key), this.refusalWindowMs);
    timer.unref();
    this.windows.set(key, { folded: 0, latest: entry, timer });
  }

  private closeWindow(key: string): void {
    const window = this.windows.get(key);
    if (!window) return;
    this.windows.delete(key);
    clearTimeout(window.timer);
    if (window.folded > 0) {
      const seconds = Math.round(this.refusalWindowMs / 1000);
      this.record({ ...window.latest, count: window.folded, message: `${window.folded} more refused attempt(s) within ${seconds} s; the last is shown` });
    }
  }

  private record(entry: NewAuditEntry): void {
    this.options.logger?.info({ audit: entry }, 'audit');
    const write = this.options.log.append(entry).catch((err: unknown) => {
      this.options.logger?.warn({ err: (err as Error).message, audit: entry }, 'cannot store an audit entry; it is only in this log');
    });
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  /** Records what the open windows folded and waits for the entries in flight (shutdown, tests). */
  async flush(): Promise<void> {
    for (const key of [...this.windows.keys()]) this.closeWindow(key);
    await Promise.all([...this.pending]);
  }
}
