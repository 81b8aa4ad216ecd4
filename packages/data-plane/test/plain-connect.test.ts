/**
 * Plain backend connections shape their options (runtime/plain-connect.ts) so that node 20 builds
 * their sockets on V8's fast path; they must still be what was asked for.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectPlain } from '../src/runtime/plain-connect.js';

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
