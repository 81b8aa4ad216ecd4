/** Polling with a deadline: the only way e2e tests wait for something to become true. */
import { createServer } from 'node:net';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  message?: string;
}

/**
 * Calls `probe` until it returns a value other than undefined/false (or stops throwing), and
 * returns that value. Fails with the last error or value seen once the deadline passes.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, false | undefined>> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * A TCP port free on 127.0.0.1 right now, below the kernel's ephemeral range. A port the OS picks
 * with `listen(0)` comes from that range, which outgoing connections draw their source ports from
 * too: between this check and the process that binds it, a test's client connection could take it
 * (a data plane then failed with EADDRINUSE). Ports 20000–31999 are never handed out that way.
 * Each test worker (VITEST_POOL_ID; other processes by pid) walks its own slice of 1,500 of them
 * in turn, so neither two workers nor two calls of one test get the same port.
 */
const SLICE = 1_500;
const slot = Number(process.env.VITEST_POOL_ID ?? process.pid) % 8;
let next = Math.floor(Math.random() * SLICE);

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < SLICE; attempt++) {
    const port = 20_000 + slot * SLICE + (next++ % SLICE);
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port in this worker's slice of 20000-31999 on 127.0.0.1`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
