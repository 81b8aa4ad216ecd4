/**
 * Client sockets read into one shared buffer (runtime/socket-reads.ts): each read reaches
 * its callback whole and in order, pause() stops reading (backpressure), and a socket handed on
 * (an upgrade) reads as a stream again, with copies that later reads do not overwrite.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readAsStream, readIntoBuffers, readIntoSharedBuffer } from '../src/runtime/socket-reads.js';
import { waitFor } from './helpers.js';

const open: Array<Server | Socket> = [];
afterEach(() => {
  for (const o of open.splice(0)) 'destroy' in o ? o.destroy() : o.close();
});

/** A server whose first accepted socket is handed to `accepted`, and a client connected to it. */
async function pair(accepted: (socket: Socket) => void): Promise<Socket> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    open.push(socket);
    accepted(socket);
  });
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  open.push(client);
  await once(client, 'connect');
  return client;
}

describe('reads into the shared buffer', () => {
  it('hands every read to the callback, in order, and stops reading while paused', async () => {
    let server: Socket | undefined;
    let got = '';
    let switched = false;
    const client = await pair((socket) => {
      server = socket;
      switched = readIntoSharedBuffer(socket, (nread, buffer) => {
        got += buffer.toString('latin1', 0, nread);
      });
    });
    await waitFor(() => server !== undefined);
    expect(switched).toBe(true);
    client.write('first;');
    await waitFor(() => got === 'first;');
    server!.pause();
    client.write('second;');
    // Paused: the bytes wait in the kernel until resume(). An absence can only be watched for a while.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(got).toBe('first;');
    server!.resume();
    await waitFor(() => got === 'first;second;');
    client.end();
    await once(server!, 'end');
  });

  it('reads as a stream again after readAsStream, each chunk a copy of its own', async () => {
    let server: Socket | undefined;
    const client = await pair((socket) => {
      server = socket;
      readIntoSharedBuffer(socket, () => {});
    });
    await waitFor(() => server !== undefined);
    readAsStream(server!);
    const chunks: Buffer[] = [];
    server!.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.write('aaaa');
    await waitFor(() => chunks.length === 1);
    client.write('bbbb');
    await waitFor(() => chunks.length === 2);
    expect(chunks.map((c) => c.toString())).toEqual(['aaaa', 'bbbb']);
  });

  it('reads into a buffer from the source each time, which later reads leave alone', async () => {
    let server: Socket | undefined;
    const given: Buffer[] = [];
    const reads: Buffer[] = [];
    const client = await pair((socket) => {
      server = socket;
      readIntoBuffers(
        socket,
        () => {
          given.push(Buffer.alloc(1024));
          return given.at(-1)!;
        },
        (nread) => reads.push(given.at(-1)!.subarray(0, nread)),
      );
    });
    await waitFor(() => server !== undefined);
    for (const text of ['one', 'two', 'three']) {
      client.write(text);
      await waitFor(() => reads.length > 0 && reads.at(-1)!.toString() === text);
    }
    expect(reads.map((r) => r.toString())).toEqual(['one', 'two', 'three']);
    expect(new Set(reads.map((r) => r.buffer)).size).toBe(3);
  });

  it('leaves a socket with bytes already buffered to its stream', async () => {
    let result: boolean | undefined;
    await pair((socket) => {
      socket.pause();
      socket.unshift(Buffer.from('early'));
      result = readIntoSharedBuffer(socket, () => {});
    });
    await waitFor(() => result !== undefined);
    expect(result).toBe(false);
  });
});
