/**
 * TCP connections driven through node's libuv stream handles directly (`tcp_wrap`, `stream_wrap`),
 * without a net.Socket around them: for the L4 proxy, whose sessions only move bytes between two
 * connections and need none of a Duplex stream's machinery.
 *
 * Why: a new L4 connection through net.Socket cost the data plane about 60 µs of user-space CPU on
 * AMD EPYC (two Socket objects and their stream state, a write request per write through
 * Writable, a tick per read, a shutdown through the Writable's finish, destroy() and its close
 * ticks), against HAProxy's 17 µs. On handles, it is the system calls and little else
 * (bench/README.md, "TCP proxying against peers").
 *
 * This is the only module that knows the handles' calling convention (the one node:net itself
 * uses, unchanged from node 20 to 24): a read is reported to `onread` with its length in
 * `streamBaseState[kReadBytesOrError]`, and lands in a buffer node allocates (passed to `onread`,
 * at `kArrayBufferOffset`) or, once `useUserBuffer()` was called, in the buffer given (the value
 * `onread` returns is the next one); a write or shutdown is a request object whose
 * `oncomplete(status)` runs if it did not finish at once (`kLastWriteWasAsync`); a connect is a
 * `TCPConnectWrap` completed the same way. Whether it still holds is checked by a behavioural
 * self-test at start-up (raw-tcp-self-test.ts); where it does not, the L4 proxy uses net.Socket.
 */
import net, { type Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ReadBuffer } from '../upstream/read-buffers.js';
import { sharedReadBuffer } from './socket-reads.js';
import type { TcpEnd, TcpEndEvents, TcpPeer } from './tcp-end.js';

/** A libuv TCP handle as node's tcp_wrap exposes it (the members used here). */
export interface TcpHandle {
  onread: (this: TcpHandle, arrayBuffer?: ArrayBuffer) => Uint8Array | undefined;
  owner?: RawTcp;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: object, data: Uint8Array): number;
  writeLatin1String(req: object, data: string): number;
  writev(req: object, chunks: readonly Uint8Array[], allBuffers: true): number;
  shutdown(req: object): number;
  close(callback?: () => void): void;
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
  setNoDelay(enable: boolean): number;
  setKeepAlive(enable: boolean, initialDelaySeconds: number): number;
  getpeername(out: Record<string, unknown>): number;
  getsockname(out: Record<string, unknown>): number;
}

interface Request {
  oncomplete: (this: Request, status: number) => void;
  owner?: RawTcp;
  handle?: TcpHandle;
  /** What a write request keeps alive until libuv has written it. */
  data?: Uint8Array | readonly Uint8Array[];
  buffer?: ReadBuffer;
  /** Called once written (or failed, or cancelled by a close). */
  done?: () => void;
}

interface Bindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => Request;
  WriteWrap: new () => Request;
  ShutdownWrap: new () => Request;
  state: Int32Array;
  readBytesOrError: number;
  arrayBufferOffset: number;
  lastWriteWasAsync: number;
  socketType: number;
  eof: number;
}

type Binding = (name: string) => Record<string, unknown>;

/** The bindings, or why they cannot be had. */
function load(): Bindings | string {
  try {
    // process.binding is deprecated for new uses (DEP0111) but keeps these two modules on its allow list.
    const binding = (process as unknown as { binding?: Binding }).binding;
    if (typeof binding !== 'function') return 'process.binding is gone';
    const tcp = binding('tcp_wrap');
    const stream = binding('stream_wrap');
    const uv = binding('uv');
    const constants = tcp.constants as Record<string, unknown> | undefined;
    const b = {
      TCP: tcp.TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      WriteWrap: stream.WriteWrap,
      ShutdownWrap: stream.ShutdownWrap,
      state: stream.streamBaseState,
      readBytesOrError: stream.kReadBytesOrError,
      arrayBufferOffset: stream.kArrayBufferOffset,
      lastWriteWasAsync: stream.kLastWriteWasAsync,
      socketType: constants?.SOCKET,
      eof: uv.UV_EOF,
    };
    for (const [name, value] of Object.entries(b)) {
      const want = name === 'state' ? value instanceof Int32Array : /^[A-Z]/.test(name) ? typeof value === 'function' : typeof value === 'number';
      if (!want) return `the tcp_wrap/stream_wrap bindings have no usable ${name}`;
    }
    return b as Bindings;
  } catch (err) {
    return `the tcp_wrap/stream_wrap bindings cannot be loaded: ${(err as Error).message}`;
  }
}

const loaded = load();
const bindings: Bindings | undefined = typeof loaded === 'string' ? undefined : loaded;

/** Why raw handles cannot be used on this node (undefined: the bindings are there; the self-test says whether they behave). */
export const rawTcpBindingProblem: string | undefined = typeof loaded === 'string' ? loaded : undefined;

function errorCode(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `E${-status}`;
  }
}

function onHandleRead(this: TcpHandle, arrayBuffer?: ArrayBuffer): Uint8Array | undefined {
  return this.owner?.read(bindings!.state[bindings!.readBytesOrError]!, arrayBuffer);
}

function afterWrite(this: Request, status: number): void {
  this.buffer?.release();
  this.done?.();
  this.owner!.wrote(status);
}

function afterShutdown(this: Request, status: number): void {
  this.owner!.shutDown(status);
}

function afterConnect(this: Request, status: number): void {
  this.owner!.connected(status);
}

/** Reads into buffers node allocates before a connection switches to recycled ones. */
const NODE_BUFFER_READS = 2;

export interface RawConnectOptions {
  /** TCP keep-alive probes after this long idle; undefined: off. */
  readonly keepAliveMs?: number;
  /**
   * Read into recycled buffers from the first read (a keep-alive connection to a backend, which
   * reads large bodies and lives long), rather than after NODE_BUFFER_READS.
   */
  readonly recycledReads?: boolean;
}

export interface RawAcceptOptions {
  /**
   * Every read goes into the one buffer all such connections share (socket-reads.ts), valid only
   * until onRead returns: for a reader that copies what it keeps (the HTTP/1.1 server's parser).
   * An idle connection then holds no read buffer at all, however long it stays.
   */
  readonly sharedReads?: boolean;
}

/**
 * One TCP connection on a libuv handle. Its first reads go into buffers node allocates for each
 * (trimmed to the bytes read), so a connection that has sent nothing holds no read buffer (an
 * idle L4 session costs about 3 KB, not a resident page of a 64 KiB buffer per end), and a short
 * one never takes one. After NODE_BUFFER_READS, reads go into recycled buffers
 * (upstream/read-buffers.ts), one at a time: a read's buffer is read into again unless a write
 * still holds a view of it.
 */
export class RawTcp implements TcpEnd {
  bytesRead = 0;
  bytesWritten = 0;
  private events: TcpEndEvents | undefined;
  private onConnect: ((status: number) => void) | undefined;
  private buffer: ReadBuffer | undefined;
  /** Reads into buffers node allocated, before reads switch to recycled ones. */
  private nodeBufferReads = 0;
  /** Reads go into recycled buffers from the first (RawConnectOptions.recycledReads). */
  private recycledReads = false;
  /** Reads go into the shared buffer (RawAcceptOptions.sharedReads). */
  private sharedReads = false;
  /** Writes handed to libuv that have not completed. */
  private pendingWrites = 0;
  private reading = false;
  /** The peer's FIN was read: nothing more to read (a read started again would report it again). */
  private ended = false;
  private closed = false;
  private failed = false;
  /** end() was called: the FIN goes after the writes under way. */
  private finSent = false;

  private constructor(private readonly handle: TcpHandle) {
    handle.owner = this;
    handle.onread = onHandleRead;
  }

  /** A connection a listener accepted (its handle from the listening handle's onconnection). */
  static accepted(handle: unknown, options?: RawAcceptOptions): RawTcp {
    const end = new RawTcp(handle as TcpHandle);
    if (options?.sharedReads === true) {
      end.sharedReads = true;
      end.handle.useUserBuffer(sharedReadBuffer);
    }
    return end;
  }

  /**
   * Connects to an IP address (`family` 4 or 6) with Nagle off; `onConnect(status)` runs once, with
   * 0 or a negative libuv error (also for a connect that could not start, on a later tick).
   */
  static connect(address: string, port: number, family: 4 | 6, onConnect: (status: number) => void, options?: RawConnectOptions): RawTcp {
    const b = bindings!;
    const end = new RawTcp(new b.TCP(b.socketType));
    end.onConnect = onConnect;
    end.handle.setNoDelay(true);
    if (options?.keepAliveMs !== undefined) end.handle.setKeepAlive(true, Math.max(1, Math.floor(options.keepAliveMs / 1000)));
    end.recycledReads = options?.recycledReads === true;
    const req = new b.TCPConnectWrap();
    req.oncomplete = afterConnect;
    req.owner = end;
    const err = family === 6 ? end.handle.connect6(req, address, port) : end.handle.connect(req, address, port);
    if (err !== 0) process.nextTick(() => end.connected(err));
    return end;
  }

  /** The connect's completion (afterConnect). */
  connected(status: number): void {
    const onConnect = this.onConnect;
    this.onConnect = undefined;
    if (!this.closed) onConnect?.(status);
  }

  start(events: TcpEndEvents): void {
    this.events = events;
    if (this.recycledReads && this.buffer === undefined && !this.closed) {
      this.buffer = ReadBuffer.take();
      this.handle.useUserBuffer(this.buffer.data);
    }
    this.resume();
  }

  /**
   * One read (onHandleRead): its bytes to the events; returns the buffer for the next read if it
   * changes. `arrayBuffer`: where node put the bytes, until reads go into recycled buffers.
   */
  read(nread: number, arrayBuffer: ArrayBuffer | undefined): Uint8Array | undefined {
    if (this.closed) return undefined;
    const events = this.events!;
    if (nread > 0) {
      this.bytesRead += nread;
      if (this.sharedReads) {
        events.onRead(sharedReadBuffer.subarray(0, nread), undefined);
        return undefined;
      }
      const buffer = this.buffer;
      if (buffer === undefined) {
        // Into node's buffer (a write that waits holds it). Switching costs a listener object in
        // node per handle, which a short connection (one read each way) would pay for nothing.
        events.onRead(Buffer.from(arrayBuffer!, bindings!.state[bindings!.arrayBufferOffset]!, nread), undefined);
        if (!this.closed && ++this.nodeBufferReads === NODE_BUFFER_READS) {
          this.buffer = ReadBuffer.take();
          this.handle.useUserBuffer(this.buffer.data);
        }
        return undefined;
      }
      events.onRead(buffer.data.subarray(0, nread), buffer);
      // A write still holds a view of it: read into another from now on.
      if (!this.closed && buffer.heldElsewhere()) {
        buffer.release();
        this.buffer = ReadBuffer.take();
        return this.buffer.data;
      }
      return undefined;
    }
    if (nread === 0) return undefined;
    this.reading = false;
    this.ended = true;
    if (nread === bindings!.eof) events.onEnd();
    else this.fail(nread);
    return undefined;
  }

  pause(): void {
    if (this.reading && !this.closed) {
      this.reading = false;
      this.handle.readStop();
    }
  }

  resume(): void {
    if (this.reading || this.ended || this.closed || this.events === undefined) return;
    const err = this.handle.readStart();
    if (err === 0) this.reading = true;
    else this.fail(err);
  }

  get writing(): boolean {
    return this.pendingWrites > 0;
  }

  write(data: Uint8Array, holds?: ReadBuffer): boolean {
    if (this.closed) return true;
    const req = this.writeRequest();
    const err = this.handle.writeBuffer(req, data);
    if (err !== 0) return this.writeFailed(err);
    this.bytesWritten += data.length;
    if (bindings!.state[bindings!.lastWriteWasAsync] === 0) return true;
    // libuv writes the rest when the socket is writable: the bytes must stay as they are until then.
    req.data = data;
    if (holds !== undefined) {
      holds.hold();
      req.buffer = holds;
    }
    this.pendingWrites++;
    return false;
  }

  writeLatin1(text: string): boolean {
    if (this.closed) return true;
    const req = this.writeRequest();
    const err = this.handle.writeLatin1String(req, text);
    if (err !== 0) return this.writeFailed(err);
    this.bytesWritten += text.length;
    if (bindings!.state[bindings!.lastWriteWasAsync] === 0) return true;
    // What libuv has yet to write node copied into the request: the string need not be kept.
    this.pendingWrites++;
    return false;
  }

  /**
   * Writes `chunks` in order with one system call (a response's head, body and chunk framing);
   * `done` runs once they are written, or the write failed, or the connection closed first. The
   * chunks must stay as they are until then.
   */
  writev(chunks: readonly Uint8Array[], done?: () => void): boolean {
    if (this.closed) {
      done?.();
      return true;
    }
    const req = this.writeRequest();
    const err = this.handle.writev(req, chunks, true);
    if (err !== 0) {
      done?.();
      return this.writeFailed(err);
    }
    for (let i = 0; i < chunks.length; i++) this.bytesWritten += chunks[i]!.length;
    if (bindings!.state[bindings!.lastWriteWasAsync] === 0) {
      done?.();
      return true;
    }
    req.data = chunks;
    req.done = done;
    this.pendingWrites++;
    return false;
  }

  private writeRequest(): Request {
    const req = new bindings!.WriteWrap();
    req.oncomplete = afterWrite;
    req.owner = this;
    req.handle = this.handle;
    return req;
  }

  private writeFailed(status: number): boolean {
    this.fail(status);
    return true;
  }

  /** A write that went on after write() returned (afterWrite). */
  wrote(status: number): void {
    this.pendingWrites--;
    if (this.closed) return;
    if (status < 0) return this.fail(status);
    if (this.pendingWrites === 0) this.events?.onDrain();
  }

  end(): void {
    // A second shutdown would fail (ENOTCONN) and read as the first one done: once is enough.
    if (this.closed || this.finSent) return;
    this.finSent = true;
    const req = new bindings!.ShutdownWrap();
    req.oncomplete = afterShutdown;
    req.owner = this;
    req.handle = this.handle;
    const err = this.handle.shutdown(req);
    // Not connected any more (the peer reset): nothing to send a FIN on, the close will tell.
    if (err !== 0) this.shutDown(0);
  }

  /** The FIN went out after every write (afterShutdown). */
  shutDown(status: number): void {
    if (this.closed) return;
    if (status < 0) return this.fail(status);
    this.events?.onFinished();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reading = false;
    this.buffer?.release();
    this.buffer = undefined;
    this.handle.owner = undefined;
    // Writes libuv still holds complete with ECANCELED, and give back the buffers they hold.
    this.handle.close();
  }

  /**
   * Hands the connection over as a net.Socket, paused, that reads as a stream once resumed (an
   * upgrade's tunnel pipes it): nothing more is reported here. Writes still under way complete in
   * order before the socket's own.
   */
  toSocket(): Socket {
    this.closed = true;
    this.reading = false;
    this.handle.readStop();
    this.buffer?.release();
    this.buffer = undefined;
    this.handle.owner = undefined;
    // net.Socket takes the handle over (its onread, its owner). The handle reads into a buffer of
    // ours for good (useUserBuffer cannot be undone), so the socket does too, through `onread`:
    // each read is copied out of the shared buffer and pushed, and a full stream stops reading.
    const onread = { buffer: sharedReadBuffer, callback: (nread: number, buffer: Buffer): boolean => socket.push(Buffer.from(buffer.subarray(0, nread))) };
    const options = { handle: this.handle, allowHalfOpen: true, pauseOnCreate: true, readable: true, writable: true, onread };
    const socket: Socket = new net.Socket(options as ConstructorParameters<typeof net.Socket>[0]);
    return socket;
  }

  /** Reports the first error only: a reset fails the read and the waiting write alike. */
  private fail(status: number): void {
    if (this.closed || this.failed) return;
    this.failed = true;
    this.events?.onError(errorCode(status));
  }

  peer(): TcpPeer | undefined {
    return this.name('getpeername');
  }

  local(): TcpPeer | undefined {
    return this.name('getsockname');
  }

  private name(which: 'getpeername' | 'getsockname'): TcpPeer | undefined {
    if (this.closed) return undefined;
    const out: Record<string, unknown> = {};
    if (this.handle[which](out) !== 0 || typeof out.address !== 'string' || typeof out.port !== 'number') return undefined;
    return { address: out.address, port: out.port };
  }
}
