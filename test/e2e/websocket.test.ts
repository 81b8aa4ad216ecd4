// WebSocket end to end (issue 12): real etcd, a control plane, a data-plane process, a real `ws`
// backend and real `ws` clients. Proves echo of 1 MiB messages, back-pressure (a client that stops
// reading makes the backend's sends wait, and the data plane does not buffer what it cannot
// deliver), and a tunnel drained on SIGTERM: it keeps working during the grace period and is
// closed when the grace period ends, the process exiting 0.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
let backend: Server;
let wss: WebSocketServer;
/** The backend's side of the /flood connection. */
let flood: WebSocket | undefined;
const MiB = 1 << 20;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  backend = createServer((_req, res) => res.end('plain'));
  wss = new WebSocketServer({ server: backend, maxPayload: 4 * MiB });
  wss.on('connection', (ws, req) => {
    if (req.url === '/flood') {
      flood = ws;
      // Sends 1 MiB messages for as long as the client takes them, then 32 more: the test looks
      // at how much the backend could not hand to its socket.
      ws.on('message', () => {
        for (let i = 0; i < 32; i++) ws.send(Buffer.alloc(MiB, 120));
      });
      return;
    }
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: { ws: { backends: [{ id: 'ws', address }] } },
    routes: { ws: { match: { pathPrefix: '/' }, pools: [{ pool: 'ws' }] } },
  });
  expect(res.status).toBe(200);
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-ws', extraArgs: ['--drain-timeout-ms', '1500'] });
  await waitFor(async () => (await dp.appliedVersion()) === res.body.version, { message: 'the config applied' });
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop();
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  await etcd?.stop();
});

function open(path: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${dp.url.replace('http://', 'ws://')}${path}`, { maxPayload: 4 * MiB });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

describe('WebSocket through a data-plane process', () => {
  it('echoes 1 MiB messages, in order', async () => {
    const ws = await open('/echo');
    const received: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on('message', (d) => {
        received.push(d as Buffer);
        if (received.length === 16) resolve();
      }),
    );
    for (let i = 0; i < 16; i++) ws.send(Buffer.alloc(MiB, 65 + i));
    await all;
    expect(received.map((b) => [b.length, b[0]])).toEqual(Array.from({ length: 16 }, (_, i) => [MiB, 65 + i]));
    ws.close();
  });

  it('holds a backend that sends faster than its client reads, without buffering it', async () => {
    const ws = await open('/flood');
    const before = rssMb(dp.process.process.pid!);
    let received = 0;
    ws.on('message', () => received++);
    ws.pause();
    ws.send('go');
    // The client reads nothing: the backend's 32 MiB cannot all leave it.
    await waitFor(() => (flood?.bufferedAmount ?? 0) > 8 * MiB, { message: 'the backend to be held back', timeoutMs: 10_000 });
    expect(rssMb(dp.process.process.pid!) - before).toBeLessThan(24);
    ws.resume();
    await waitFor(() => received === 32, { message: 'every message after the client reads again', timeoutMs: 20_000 });
    ws.close();
  });

  it('keeps a tunnel open while draining on SIGTERM, closes it at the grace period, and exits 0', async () => {
    const ws = await open('/drain');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const started = Date.now();
    const exited = dp.stop();
    // Draining (not ready any more), and the tunnel still carries messages.
    await waitFor(async () => (await fetch(`${dp.adminUrl}/readyz`)).status === 503, { message: 'the node to drain' });
    const echo = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.send('still here');
    expect(await echo).toBe('still here');
    await closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    expect(await exited).toBe(0);
  });
});
