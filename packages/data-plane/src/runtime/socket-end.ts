/**
 * A TcpEnd on a net.Socket: what an L4 session uses where raw handles (raw-tcp.ts) are not used —
 * their self-test failed on this node, or a backend is named by a host name that node:net resolves.
 * Reads go into recycled buffers through onread where the socket allows it (socket-reads.ts), else
 * through 'data'.
 */
import type { Socket } from 'node:net';
import { SocketReadBuffers, type ReadBuffer } from '../upstream/read-buffers.js';
import { connectPlain } from './plain-connect.js';
import { readAsStream, readIntoBuffers, readIntoSharedBuffer } from './socket-reads.js';
import type { TcpEnd, TcpEndEvents, TcpPeer } from './tcp-end.js';

export class SocketEnd implements TcpEnd {
  private events: TcpEndEvents | undefined;
  private closed = false;
  private onConnect: ((status: number) => void) | undefined;
  /** Connected by connect(), with onread from the start. */
  private readsThroughOnread = false;
  /** Reads go into the shared buffer (sharing()). */
  private sharedReads = false;

  constructor(
    private readonly socket: Socket,
    private readonly reads = new SocketReadBuffers(),
  ) {
    socket.on('error', this.onError);
  }

  /**
   * An end on an accepted socket whose reads all go into one shared buffer, valid until onRead
   * returns (readIntoSharedBuffer): for a reader that copies what it keeps (the HTTP/1.1 server).
   */
  static sharing(socket: Socket): SocketEnd {
    const end = new SocketEnd(socket);
    end.sharedReads = true;
    return end;
  }

  /**
   * Connects to `host` (a name is resolved by node:net), with TCP keep-alive after `keepAliveMs`
   * idle when given; `onConnect(status)` runs once, 0 or a negative libuv error.
   */
  static connect(host: string, port: number, onConnect: (status: number) => void, keepAliveMs?: number): SocketEnd {
    let end: SocketEnd | undefined;
    const reads = new SocketReadBuffers();
    const onread = {
      buffer: reads.next,
      // Reads come only once connected, after `end` is made.
      callback: (nread: number): boolean => {
        end!.onReadInto(nread);
        return true;
      },
    };
    end = new SocketEnd(connectPlain({ host, port, allowHalfOpen: true, keepAliveMs, onread }), reads);
    end.onConnect = onConnect;
    end.readsThroughOnread = true;
    end.socket.once('connect', end.onConnected);
    return end;
  }

  get bytesRead(): number {
    return this.socket.bytesRead;
  }

  get bytesWritten(): number {
    return this.socket.bytesWritten;
  }

  get writing(): boolean {
    return this.socket.writableLength > 0;
  }

  private readonly onConnected = (): void => {
    const onConnect = this.onConnect;
    this.onConnect = undefined;
    // A connected socket reads at once; until the session starts this end, it must not.
    if (this.events === undefined) this.socket.pause();
    onConnect?.(0);
  };

  start(events: TcpEndEvents): void {
    this.events = events;
    const s = this.socket;
    s.on('end', this.onEnd);
    s.on('drain', this.onDrain);
    s.on('finish', this.onFinish);
    // Connected sockets read through onread from the start; accepted ones switch if they can.
    const switched =
      this.readsThroughOnread ||
      (this.sharedReads ? readIntoSharedBuffer(s, this.onSharedRead) : readIntoBuffers(s, this.reads.next, (nread) => this.onReadInto(nread)));
    if (!switched) s.on('data', this.onData);
    s.resume();
  }

  private readonly onEnd = (): void => {
    if (!this.closed) this.events!.onEnd();
  };

  private readonly onDrain = (): void => {
    if (!this.closed) this.events!.onDrain();
  };

  private readonly onFinish = (): void => {
    if (!this.closed) this.events!.onFinished();
  };

  private readonly onSharedRead = (nread: number, buffer: Buffer): void => {
    if (!this.closed) this.events!.onRead(nread === buffer.length ? buffer : buffer.subarray(0, nread), undefined);
  };

  private onReadInto(nread: number): void {
    if (this.closed || this.events === undefined) return;
    const buffer = this.reads.current!;
    this.events.onRead(buffer.data.subarray(0, nread), buffer);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.closed) this.events?.onRead(chunk, undefined);
  };

  private readonly onError = (err: Error & { code?: string; errno?: number }): void => {
    if (this.closed) return;
    const onConnect = this.onConnect;
    if (onConnect !== undefined) {
      this.onConnect = undefined;
      // node's errno is libuv's (negative; ENOTFOUND's too), which getSystemErrorName names.
      return onConnect(typeof err.errno === 'number' && err.errno < 0 ? err.errno : -1);
    }
    this.events?.onError(err.code ?? 'EIO');
  };

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  write(data: Uint8Array, holds?: ReadBuffer): boolean {
    if (this.closed) return true;
    if (holds === undefined) return this.socket.write(data);
    holds.hold();
    return this.socket.write(data, holds.release);
  }

  writeLatin1(text: string): boolean {
    return this.closed || this.socket.write(text, 'latin1');
  }

  writev(chunks: readonly Uint8Array[], done?: () => void): boolean {
    if (this.closed) {
      done?.();
      return true;
    }
    const s = this.socket;
    s.cork();
    let ok = true;
    for (let i = 0; i < chunks.length; i++) ok = s.write(chunks[i]!, i === chunks.length - 1 ? done : undefined);
    s.uncork();
    return ok;
  }

  toSocket(): Socket {
    this.closed = true;
    const s = this.socket;
    s.off('error', this.onError);
    s.off('end', this.onEnd);
    s.off('drain', this.onDrain);
    s.off('finish', this.onFinish);
    s.off('data', this.onData);
    readAsStream(s);
    this.reads.close();
    // Held still until the caller reads it (pipe() resumes it): nothing may flow to no listener.
    s.pause();
    return s;
  }

  end(): void {
    if (!this.closed) this.socket.end();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reads.close();
    this.socket.destroy();
  }

  peer(): TcpPeer | undefined {
    const { remoteAddress: address, remotePort: port } = this.socket;
    return address === undefined || port === undefined ? undefined : { address, port };
  }

  local(): TcpPeer | undefined {
    const { localAddress: address, localPort: port } = this.socket;
    return address === undefined || port === undefined ? undefined : { address, port };
  }
}
