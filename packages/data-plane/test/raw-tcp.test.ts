// Raw TCP handles (runtime/raw-tcp.ts) against real loopback peers that misbehave: a peer that
// resets while a large write waits, a connect nobody answers, a close with writes still queued.
// Each case checks what the L4 session relies on: one error report and nothing after close(),
// and every read buffer back in the free list.
import net, { type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rawTcp } from '../src/runtime/raw-tcp-self-test.js';
import { RawTcp } from '../src/runtime/raw-tcp.js';
import type { TcpEndEvents } from '../src/runtime/tcp-end.js';
import { freeReadBuffers, ReadBuffer } from '../src/upstream/read-buffers.js';
import { waitFor } from './helpers.js';

/** Records what an end reports. */
class Events implements TcpEndEvents {
  readonly log: string[] = [];
  received = 0;
  onRead(data: Buffer, _buffer: ReadBuffer | undefined): void {
    this.received += data.length;
  }
  onEnd(): void {
    this.log.push('end');
  }
  onDrain(): void {
    this.log.push('drain');
  }
  onFinished(): void {
    this.log.push('finished');
  }
  onError(code: string): void {
    this.log.push(`error ${code}`);
  }
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(onConnection: (socket: Socket) => void): Promise<number> {
  const server = net.createServer(onConnection);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<RawTcp> {
  return new Promise((resolve, reject) => {
    const end = RawTcp.connect('127.0.0.1', port, 4, (status) => (status === 0 ? resolve(end) : reject(new Error(`connect ${status}`))));
  });
}

describe('raw TCP handles', () => {
  it('pass their self-test on this node', () => {
    expect(rawTcp).toEqual({ ok: true });
  });

  it('connect to IPv6 backends, and name both ends of the connection', async () => {
    const server = net.createServer((s) => s.end('v6'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const end = await new Promise<RawTcp>((resolve, reject) => {
      const e = RawTcp.connect('::1', port, 6, (status) => (status === 0 ? resolve(e) : reject(new Error(`connect ${status}`))));
    });
    expect(end.peer()).toEqual({ address: '::1', port });
    expect(end.local()?.address).toBe('::1');
    const answers: string[] = [];
    const events = new (class extends Events {
      override onRead(data: Buffer): void {
        answers.push(data.toString());
      }
    })();
    end.start(events);
    await waitFor(() => events.log.includes('end'));
    expect(answers.join('')).toBe('v6');
    end.close();
  });

  it('report a connect nobody answers as a failed status, once', async () => {
    const port = await listen(() => undefined);
    servers.pop()!.close();
    await new Promise((r) => setTimeout(r, 50));
    const statuses: number[] = [];
    RawTcp.connect('127.0.0.1', port, 4, (status) => statuses.push(status));
    await waitFor(() => statuses.length === 1);
    expect(statuses[0]).toBeLessThan(0);
  });

  it('report a peer that resets during a write that waits as one error, and keep no buffer', async () => {
    const free = freeReadBuffers();
    let peer: Socket | undefined;
    const port = await listen((s) => {
      peer = s;
      s.pause();
    });
    const end = await connect(port);
    const events = new Events();
    end.start(events);
    // More than the kernel takes while the peer does not read: the write waits.
    expect(end.write(Buffer.alloc(32 * 1024 * 1024))).toBe(false);
    expect(end.writing).toBe(true);
    await waitFor(() => peer !== undefined);
    peer!.resetAndDestroy();
    await waitFor(() => events.log.some((l) => l.startsWith('error')), 5000, 'the reset to be reported');
    expect(events.log.filter((l) => l.startsWith('error'))).toHaveLength(1);
    expect(events.log[0]).toMatch(/^error E(CONNRESET|PIPE)$/);
    end.close();
    await waitFor(() => freeReadBuffers() >= free, 5000, 'the read buffer to come back');
  });

  it('report nothing after close(), even for writes still queued, and give their buffers back', async () => {
    const port = await listen((s) => s.pause());
    const end = await connect(port);
    const events = new Events();
    end.start(events);
    // Once back, the free list holds what it holds now, and at least the buffer taken here.
    const free = Math.max(freeReadBuffers(), 1);
    const held = ReadBuffer.take();
    // A write of a read buffer's view that waits holds the buffer until libuv is done with it.
    expect(end.write(Buffer.alloc(32 * 1024 * 1024))).toBe(false);
    end.write(held.data, held);
    held.release();
    expect(held.heldElsewhere()).toBe(false);
    expect(freeReadBuffers()).toBe(free - 1);
    end.end();
    end.close();
    // The cancelled writes give the buffer back; nothing reaches the events.
    await waitFor(() => freeReadBuffers() === free, 5000, 'the held buffer to come back');
    expect(events.log).toEqual([]);
  });

  it('pass a half-close both ways: the peer reads our FIN and still answers', async () => {
    const port = await listen((s) => {
      let got = 0;
      s.on('data', (d) => (got += d.length));
      s.on('end', () => s.end(`got ${got}`));
    });
    const end = await connect(port);
    const answers: string[] = [];
    const events = new (class extends Events {
      override onRead(data: Buffer): void {
        answers.push(data.toString());
      }
    })();
    end.start(events);
    expect(end.write(Buffer.from('0123456789'))).toBe(true);
    end.end();
    await waitFor(() => events.log.includes('end'));
    expect(answers.join('')).toBe('got 10');
    expect(events.log).toEqual(['finished', 'end']);
    expect(end.bytesWritten).toBe(10);
    expect(end.bytesRead).toBe(6);
    end.close();
  });
});
