/** Real TCP backends for L4 tests (tcp-backend-server.mjs), each its own process so it can be killed mid-stream. */
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Child } from './child.js';
import { waitFor } from './wait.js';

const SERVER = fileURLToPath(new URL('./tcp-backend-server.mjs', import.meta.url));

export class TcpBackend {
  private constructor(
    readonly name: string,
    readonly child: Child,
    readonly port: number,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** `args`: `--proxy v1|v2` to require a PROXY header, `--tls CERT KEY` to terminate TLS. */
  static async start(name: string, args: string[] = []): Promise<TcpBackend> {
    const child = new Child(`tcp backend ${name}`, process.execPath, [SERVER, name, ...args]);
    const port = await waitFor(
      () => {
        if (!child.running) throw new Error(`tcp backend ${name} exited: ${child.logs()}`);
        const m = /listening (\d+)/.exec(child.logs());
        return m === null ? undefined : Number(m[1]);
      },
      { timeoutMs: 10_000, message: `tcp backend ${name} to listen` },
    );
    return new TcpBackend(name, child, port);
  }

  stop(): Promise<number | null> {
    return this.child.stop();
  }

  kill(): Promise<number | null> {
    return this.child.kill();
  }
}

/**
 * A port whose connects time out: a process that listens with a backlog of 1 and then blocks its
 * thread (Atomics.wait: no CPU), so it never accepts; once `fill()` has queued what the kernel
 * holds, further SYNs are dropped and a connect hangs until its timeout.
 */
export class BlackHole {
  private readonly fillers: Socket[] = [];

  private constructor(
    readonly child: Child,
    readonly port: number,
  ) {}

  static async start(): Promise<BlackHole> {
    const script =
      "const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {" +
      " console.log('listening ' + s.address().port);" +
      ' setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000), 50); });';
    const child = new Child('black hole', process.execPath, ['-e', script]);
    const port = await waitFor(() => Number(/listening (\d+)/.exec(child.logs())?.[1] ?? 0) || undefined, { message: 'the black hole to listen' });
    return new BlackHole(child, port);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Queues connections until one no longer completes: the kernel holds no more. */
  async fill(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      const connected = await new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: this.port });
        this.fillers.push(s);
        const timer = setTimeout(() => resolve(false), 300);
        s.once('connect', () => {
          clearTimeout(timer);
          resolve(true);
        });
        s.on('error', () => undefined);
      });
      if (!connected) return;
    }
    throw new Error('the black hole kept accepting');
  }

  async stop(): Promise<void> {
    for (const s of this.fillers) s.destroy();
    await this.child.kill();
  }
}

/** A client connection that collects what it receives; `from` binds it to a loopback source address. */
export class TcpClient {
  received = '';
  ended = false;
  closed = false;
  error: Error | undefined;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (this.received += d));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', (err) => (this.error = err));
  }

  static open(host: string, port: number, from?: string): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      // Not half-open: a FIN from the proxy ends the client too, as most clients do.
      const socket = connect({ host, port, ...(from !== undefined ? { localAddress: from } : {}) });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new TcpClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Waits until what was received matches `pattern` (within `timeoutMs`). */
  async expect(pattern: RegExp, timeoutMs = 5_000): Promise<RegExpExecArray> {
    return waitFor(() => pattern.exec(this.received) ?? undefined, { timeoutMs, message: `${pattern} in ${JSON.stringify(this.received.slice(-200))}` });
  }

  /** The backend's greeting: its name (and the client address it saw). */
  async greeting(): Promise<{ backend: string; client: string }> {
    const m = await this.expect(/^hello (\S+) from (\S+)/);
    return { backend: m[1]!, client: m[2]! };
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
