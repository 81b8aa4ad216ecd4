// Large bodies stream through the data plane both ways, intact, and with back-pressure: a client
// that stops reading pauses the backend's writes, and a backend that stops reading pauses the
// client's upload, instead of the data plane buffering the whole body. Loopback only, bounded.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataPlane } from '../support/planes.js';
import { freePort, waitFor } from '../support/wait.js';

const MiB = 1 << 20;
/** Far more than every socket buffer and stream high-water mark on the path put together. */
const HUGE = 96 * MiB;
/** What the buffers on the path may hold while one side is stalled (kernel autotuning included). */
const BUFFERED_AT_MOST = 48 * MiB;

/** Deterministic bytes: chunk i of the body is filled with (i % 251). */
function chunk(i: number, size = 64 * 1024): Buffer {
  return Buffer.alloc(size, i % 251);
}

interface Probe {
  /** Bytes the backend has handed to res.write so far (download). */
  written: number;
  /** The backend is waiting for 'drain' (its write side is paused). */
  waitingForDrain: boolean;
  /** Bytes of the request body the backend has read (upload). */
  read: number;
  /** Call to let a paused upload handler start reading. */
  release: (() => void) | undefined;
}

const probe: Probe = { written: 0, waitingForDrain: false, read: 0, release: undefined };

function writeBody(res: ServerResponse, total: number): void {
  let i = 0;
  const pump = () => {
    while (probe.written < total) {
      const c = chunk(i++);
      probe.written += c.length;
      if (!res.write(c)) {
        probe.waitingForDrain = true;
        res.once('drain', () => {
          probe.waitingForDrain = false;
          pump();
        });
        return;
      }
    }
    res.end();
  };
  pump();
}

function backendHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://backend');
  if (url.pathname === '/download') {
    const total = Number(url.searchParams.get('bytes'));
    probe.written = 0;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    writeBody(res, total);
    return;
  }
  if (url.pathname === '/upload') {
    probe.read = 0;
    const hash = createHash('sha256');
    const start = () => {
      req.on('data', (c: Buffer) => {
        probe.read += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        const body = JSON.stringify({ bytes: probe.read, sha256: hash.digest('hex') });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    };
    if (url.searchParams.get('hold') === '1') probe.release = start;
    else start();
    return;
  }
  res.writeHead(404).end();
}

let backend: Server;
let dp: DataPlane;

beforeAll(async () => {
  backend = createServer(backendHandler);
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const cacheFile = join(mkdtempSync(join(tmpdir(), 'lb-streaming-')), 'snapshot.json');
  writeFileSync(
    cacheFile,
    JSON.stringify({
      version: 1,
      config: { pools: { big: { algorithm: 'round_robin', backends: [{ id: 'b', address }] } }, routes: { all: { pools: [{ pool: 'big' }] } } },
    }),
  );
  dp = await DataPlane.start({ controlPlanes: [`127.0.0.1:${await freePort()}`], nodeId: 'dp-streaming', cacheFile, extraArgs: ['--workers', '1'] });
});

afterAll(async () => {
  await dp?.stop();
  backend?.closeAllConnections();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
});

/** Waits until `sample` returns the same non-negative value three times 250 ms apart; returns it. */
async function plateau(sample: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const now = sample();
    same = now >= 0 && now === last ? same + 1 : 0;
    if (same >= 2) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no plateau within 15 s (last sample ${last})`);
}

function expectedHash(total: number): string {
  const hash = createHash('sha256');
  for (let i = 0, n = 0; n < total; i++, n += 64 * 1024) hash.update(chunk(i));
  return hash.digest('hex');
}

describe('streaming through the data plane', () => {
  it('passes a 16 MiB download through intact', async () => {
    const total = 16 * MiB;
    const res = await fetch(`${dp.url}/download?bytes=${total}`);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(total);
    expect(createHash('sha256').update(body).digest('hex')).toBe(expectedHash(total));
  });

  it('passes a 16 MiB chunked upload through intact', async () => {
    const total = 16 * MiB;
    const result = await new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
      const req = httpRequest(`${dp.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString())));
      });
      req.on('error', reject);
      let i = 0;
      const pump = () => {
        while (i * 64 * 1024 < total) if (!req.write(chunk(i++))) return void req.once('drain', pump);
        req.end();
      };
      pump();
    });
    expect(result).toEqual({ bytes: total, sha256: expectedHash(total) });
  });

  it('pauses the backend while a client does not read, then delivers everything', async () => {
    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${dp.url}/download?bytes=${HUGE}`, (res) => {
        res.pause();
        (async () => {
          // The backend fills the buffers on the path (they grow as the kernel autotunes them) and
          // then stays paused, waiting for 'drain', as long as the client does not read.
          const stalled = await plateau(() => (probe.waitingForDrain ? probe.written : -1));
          expect(probe.waitingForDrain).toBe(true);
          expect(stalled).toBeLessThan(BUFFERED_AT_MOST);
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve(bytes));
          res.resume();
        })().catch(reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(received).toBe(HUGE);
  });

  it('pauses the client upload while the backend does not read, then delivers everything', async () => {
    let sent = 0;
    let clientPaused = false;
    const done = new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
      const req = httpRequest(`${dp.url}/upload?hold=1`, { method: 'POST', headers: { 'content-length': String(HUGE) } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString())));
      });
      req.on('error', reject);
      let i = 0;
      const pump = () => {
        clientPaused = false;
        while (sent < HUGE) {
          const c = chunk(i++);
          sent += c.length;
          if (!req.write(c)) {
            clientPaused = true;
            return void req.once('drain', pump);
          }
        }
        req.end();
      };
      pump();
    });
    await waitFor(() => probe.release !== undefined, { message: 'the upload to reach the backend', timeoutMs: 10_000 });
    const stalled = await plateau(() => (clientPaused ? sent : -1));
    expect(clientPaused).toBe(true);
    expect(probe.read).toBe(0);
    expect(stalled).toBeLessThan(BUFFERED_AT_MOST);
    probe.release!();
    expect(await done).toEqual({ bytes: HUGE, sha256: expectedHash(HUGE) });
  });
});
