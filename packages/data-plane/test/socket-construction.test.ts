/**
 * Listener servers build their accepted sockets themselves (runtime/accepted-sockets.ts) and plain
 * backend connections shape their options (runtime/plain-connect.ts), so that node 20 builds
 * sockets on V8's fast path. What node's own accept did must still hold: the 'connection' event,
 * half-open sockets, the server's connection count that close() waits on, the diagnostics channel.
 */
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptsOnFastPath, createListenerServer } from '../src/runtime/accepted-sockets.js';
import { connectPlain } from '../src/runtime/plain-connect.js';
import { waitFor } from './helpers.js';

const open: Array<Server | Socket> = [];
afterEach(() => {
  for (const o of open.splice(0)) 'destroy' in o ? o.destroy() : o.close();
});

async function listening(server: Server): Promise<number> {
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function client(port: number): Socket {
  const socket = connect(port, '127.0.0.1');
  open.push(socket);
  return socket;
}

describe('accepted sockets', () => {
  it('are built by the listener server once it listens, and carry the server', async () => {
    const accepted: Socket[] = [];
    const server = createListenerServer((socket) => accepted.push(socket));
    expect(acceptsOnFastPath(server)).toBe(false);
    const port = await listening(server);
    expect(acceptsOnFastPath(server)).toBe(true);
    client(port);
    await waitFor(() => accepted.length === 1);
    const socket = accepted[0]! as Socket & { server?: Server };
    expect(socket.server).toBe(server);
    expect(socket.allowHalfOpen).toBe(true);
    expect(socket.remoteAddress).toBe('127.0.0.1');
  });

  it('stay writable after the client half-closes, and pass bytes both ways', async () => {
    const server = createListenerServer((socket) => {
      let got = '';
      socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
      socket.on('end', () => socket.end(`echo:${got}`));
    });
    const c = client(await listening(server));
    await once(c, 'connect');
    c.end('hello');
    let answer = '';
    c.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await once(c, 'end');
    expect(answer).toBe('echo:hello');
  });

  it('are counted by the server, so close() waits for them and getConnections() sees them', async () => {
    const accepted: Socket[] = [];
    const server = createListenerServer((socket) => accepted.push(socket));
    const port = await listening(server);
    client(port);
    client(port);
    await waitFor(() => accepted.length === 2);
    const count = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    expect(count).toBe(2);
    let closed = false;
    server.close(() => (closed = true));
    accepted[0]!.destroy();
    await waitFor(() => accepted[0]!.destroyed);
    // One connection is still open: close() has not called back yet.
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    accepted[1]!.destroy();
    await waitFor(() => closed);
  });

  it('are published on the net.server.socket diagnostics channel, as node publishes them', async () => {
    const seen: Socket[] = [];
    const onSocket = (message: unknown): void => void seen.push((message as { socket: Socket }).socket);
    diagnostics.subscribe('net.server.socket', onSocket);
    try {
      const accepted: Socket[] = [];
      const server = createListenerServer((socket) => accepted.push(socket));
      client(await listening(server));
      await waitFor(() => accepted.length === 1);
      expect(seen).toContain(accepted[0]);
    } finally {
      diagnostics.unsubscribe('net.server.socket', onSocket);
    }
  });
});

describe('plain connections to backends', () => {
  it('connect with the options asked for, reading through onread', async () => {
    const server = createServer((socket) => socket.end('from the backend'));
    const port = await listening(server);
    const buffer = Buffer.alloc(64);
    let got = '';
    const socket = connectPlain({
      host: '127.0.0.1',
      port,
      allowHalfOpen: true,
      keepAliveMs: 60_000,
      onread: {
        buffer,
        callback: (nread: number, buf: Uint8Array) => {
          got += Buffer.from(buf.subarray(0, nread)).toString();
          return true;
        },
      },
    });
    open.push(socket);
    expect(socket.allowHalfOpen).toBe(true);
    await once(socket, 'end');
    expect(got).toBe('from the backend');
    // Half-open: the backend's FIN leaves this side writable.
    expect(socket.writable).toBe(true);
  });

  it('are not half-open unless asked', async () => {
    const server = createServer(() => undefined);
    const socket = connectPlain({ host: '127.0.0.1', port: await listening(server) });
    open.push(socket);
    expect(socket.allowHalfOpen).toBe(false);
    await once(socket, 'connect');
  });
});
