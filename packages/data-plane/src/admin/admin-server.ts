/**
 * The admin port, apart from client traffic so probes and scrapes never queue behind it:
 * /healthz (the process is alive), /readyz (a snapshot is applied and the node is not draining),
 * /metrics (Prometheus text) and /config (what runs and where it came from).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '@lb/shared';
import type { ConfigView } from '../config/snapshot-applier.js';

export interface AdminState {
  /** Ready to take traffic: a snapshot is applied and the node is not shutting down. */
  ready(): { ready: boolean; reason?: string };
  /** May answer later: with --workers N the primary asks a worker for its table (undefined: none answered → 503). */
  describeConfig(): ConfigView | undefined | Promise<ConfigView | undefined>;
}

/** Prometheus text for /metrics: a prom-client Registry, or the primary's aggregation across workers. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 2)}\n`);
}

export function createAdminServer(state: AdminState, metrics: MetricsSource, logger: Logger): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    switch (path) {
      case '/healthz':
        return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      case '/readyz': {
        const r = state.ready();
        return r.ready
          ? send(res, 200, 'text/plain; charset=utf-8', 'ready\n')
          : send(res, 503, 'text/plain; charset=utf-8', `not ready: ${r.reason ?? 'unknown'}\n`);
      }
      case '/metrics':
        return send(res, 200, metrics.contentType, await metrics.metrics());
      case '/config': {
        const view = await state.describeConfig();
        return view === undefined ? send(res, 503, 'text/plain; charset=utf-8', 'no worker is serving\n') : json(res, 200, view);
      }
      default:
        return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /healthz, /readyz, /metrics or /config\n');
    }
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, url: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
}
