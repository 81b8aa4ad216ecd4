/**
 * The admin port, apart from client traffic so probes and scrapes never queue behind it:
 * /healthz (the process is alive), /readyz (a snapshot is applied and the node is not draining),
 * /metrics (Prometheus text) and /config (what runs and where it came from).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '@lb/shared';
import type { ConfigView } from '../config/snapshot-applier.js';
import type { DataPlaneMetrics } from '../metrics.js';

export interface AdminState {
  /** Ready to take traffic: a snapshot is applied and the node is not shutting down. */
  ready(): { ready: boolean; reason?: string };
  describeConfig(): ConfigView;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 2)}\n`);
}

export function createAdminServer(state: AdminState, metrics: DataPlaneMetrics, logger: Logger): Server {
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
        return r.ready ? send(res, 200, 'text/plain; charset=utf-8', 'ready\n') : send(res, 503, 'text/plain; charset=utf-8', `not ready: ${r.reason ?? 'unknown'}\n`);
      }
      case '/metrics':
        return send(res, 200, metrics.registry.contentType, await metrics.registry.metrics());
      case '/config':
        return json(res, 200, state.describeConfig());
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
