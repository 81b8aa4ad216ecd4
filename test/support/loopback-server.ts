/**
 * What the e2e backends have in common: a node:http server on 127.0.0.1 with a long keep-alive,
 * its address, the requests in flight, and a close that does not wait for idle connections.
 * A backend only says how it answers (`handle`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export abstract class LoopbackServer {
  /** Kept by `handle`: requests whose response is not closed yet. */
  protected inFlight = 0;

  protected constructor(
    readonly name: string,
    private readonly server: Server,
  ) {}

  /** Builds the backend on a new server with `make` and listens on `port` (0: a free one). */
  protected static async listen<B extends LoopbackServer>(make: (server: Server) => B, port: number): Promise<B> {
    let backend!: B;
    const server = createServer((req, res) => backend.handle(req, res));
    server.keepAliveTimeout = 30_000;
    backend = make(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return backend;
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): void;

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get active(): number {
    return this.inFlight;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
