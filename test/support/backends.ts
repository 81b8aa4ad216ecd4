/**
 * Real HTTP backends on loopback. Each answers with its own name so tests can see where a request
 * went, counts hits, and offers a few behaviours tests need: `/slow?ms=N`, `/status/N`, `/echo`
 * (request headers and body back as JSON), `/big?bytes=N`, `/hop` (answers with hop-by-hop headers).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export class Backend {
  hits = 0;
  readonly seen: SeenRequest[] = [];
  private inFlight = 0;

  private constructor(readonly name: string, private readonly server: Server) {}

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get active(): number {
    return this.inFlight;
  }

  static async start(name: string, port = 0): Promise<Backend> {
    let backend!: Backend;
    const server = createServer((req, res) => backend.handle(req, res));
    server.keepAliveTimeout = 30_000;
    backend = new Backend(name, server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return backend;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
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

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
