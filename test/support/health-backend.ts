/**
 * A backend for health tests: like Backend (answers with its name in X-Backend, `/slow?ms=N`), plus
 * a switchable `/health` (any status, or a hang), traffic that can be told to fail with a status,
 * and a log of every health probe with the control-plane replica that sent it
 * (the `X-LB-Probe-Replica` header), so tests can prove which replica probes when.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.js';

export interface ProbeSeen {
  replica: string;
  at: number;
}

export class HealthBackend extends LoopbackServer {
  /** Client requests (everything but /health). */
  hits = 0;
  /** Status /health answers; 0 never answers (the probe times out). */
  healthStatus = 200;
  /** When set, every client request answers this status. */
  trafficStatus: number | undefined;
  readonly probes: ProbeSeen[] = [];

  private constructor(name: string, server: Server) {
    super(name, server);
  }

  static start(name: string): Promise<HealthBackend> {
    return LoopbackServer.listen((server) => new HealthBackend(name, server), 0);
  }

  /** Probes seen per replica id. */
  probeCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.probes) out[p.replica] = (out[p.replica] ?? 0) + 1;
    return out;
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://backend');
    if (url.pathname === '/health') {
      const replica = req.headers['x-lb-probe-replica'];
      this.probes.push({ replica: typeof replica === 'string' ? replica : '', at: Date.now() });
      if (this.probes.length > 20_000) this.probes.splice(0, 10_000);
      if (this.healthStatus === 0) return; // hang: the probe times out
      return this.reply(res, this.healthStatus, 'health\n');
    }
    this.hits++;
    this.inFlight++;
    res.on('close', () => this.inFlight--);
    req.resume();
    req.on('end', () => {
      if (this.trafficStatus !== undefined) return this.reply(res, this.trafficStatus, `${this.name} failing\n`);
      if (url.pathname === '/slow') {
        const ms = Number(url.searchParams.get('ms') ?? '1000');
        setTimeout(() => this.reply(res, 200, `${this.name} slow ${ms}\n`), ms);
        return;
      }
      this.reply(res, 200, `${this.name}\n`);
    });
  }

  private reply(res: ServerResponse, status: number, body: string): void {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': this.name, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

/**
 * Background load through a data plane: `concurrency` loops sending GETs until stop(), counting
 * answers per backend (X-Backend) and anything that was not a 200.
 */
export class Load {
  readonly byBackend: Record<string, number> = {};
  readonly failures: string[] = [];
  total = 0;
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(url: string, concurrency = 4) {
    this.loops = Array.from({ length: concurrency }, () => this.loop(url));
  }

  private async loop(url: string): Promise<void> {
    while (this.running) {
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        this.total++;
        const backend = res.headers.get('x-backend') ?? `status-${res.status}`;
        this.byBackend[backend] = (this.byBackend[backend] ?? 0) + 1;
        if (res.status !== 200) this.failures.push(`${res.status} from ${backend}`);
      } catch (err) {
        this.failures.push((err as Error).message);
      }
    }
  }

  /** A copy of the per-backend counts now (for before/after comparisons). */
  snapshot(): Record<string, number> {
    return { ...this.byBackend };
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}
