/**
 * Real HTTP backends on loopback. Each answers with its own name so tests can see where a request
 * went, counts hits, and offers a few behaviours tests need: `/slow?ms=N`, `/status/N`, `/echo`
 * (request headers and body back as JSON), `/big?bytes=N`, `/hop` (answers with hop-by-hop headers).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.js';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export class Backend extends LoopbackServer {
  hits = 0;
  readonly seen: SeenRequest[] = [];

  private constructor(name: string, server: Server) {
    super(name, server);
  }

  static start(name: string, port = 0): Promise<Backend> {
    return LoopbackServer.listen((server) => new Backend(name, server), port);
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    this.hits += 1;
    this.inFlight += 1;
    res.on('close', () => (this.inFlight -= 1));
    if (this.seen.length < 1000) this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://backend');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (url.pathname === '/slow') {
        const ms = Number(url.searchParams.get('ms') ?? '1000');
        setTimeout(() => this.reply(res, 200, `${this.name} slow ${ms}\n`), ms);
      } else if (url.pathname.startsWith('/status/')) {
        this.reply(res, Number(url.pathname.slice('/status/'.length)), `${this.name}\n`);
      } else if (url.pathname === '/echo') {
        const body = JSON.stringify({ backend: this.name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
        this.reply(res, 200, body, 'application/json');
      } else if (url.pathname === '/hop') {
        res.writeHead(200, {
          connection: 'keep-alive, x-upstream-secret',
          'x-upstream-secret': 'hop',
          'proxy-authenticate': 'Basic realm="backend"',
          'x-visible': 'end-to-end',
          'x-backend': this.name,
          'content-length': '3',
        });
        res.end('hop');
      } else if (url.pathname === '/big') {
        const bytes = Number(url.searchParams.get('bytes') ?? String(1 << 20));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes), 'x-backend': this.name });
        res.end(Buffer.alloc(bytes, 97));
      } else {
        this.reply(res, 200, `${this.name}\n`);
      }
    });
  }

  private reply(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
    res.writeHead(status, { 'content-type': type, 'x-backend': this.name, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
