/**
 * Socket read buffers that are used again instead of left to the garbage collector. Node's
 * sockets read into a fresh 64 KiB buffer each time; at proxy rates those become hundreds of
 * megabytes a second of garbage that V8 collects only after 64 MiB of "external" growth, and
 * glibc keeps much of what is freed (bench/README.md, streaming memory). Upstream connections
 * read through `onread` into buffers from this free list instead. A large response body is
 * passed on as views of the buffer it was read into (no copy); each view holds the buffer until
 * the client socket has written it, then the buffer returns here for the next read.
 */
import type { Socket } from 'node:net';

/** Size of one read buffer: as much as a socket read hands over at once. */
export const READ_BUFFER_SIZE = 64 * 1024;
/** Free buffers kept beyond this are left to the collector (a burst's buffers, 16 MiB). */
const FREE_LIMIT = 256;

const free: ReadBuffer[] = [];

export class ReadBuffer {
  readonly data = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  /** The socket reading into it, plus one per view still being written to a client. */
  private holds = 0;

  /** Drops one hold (a bound method: pass it as a write callback); the last one frees the buffer. */
  readonly release = (): void => {
    if (--this.holds === 0 && free.length < FREE_LIMIT) free.push(this);
  };

  /** A hold for a view handed on; `release` gives it back. */
  hold(): void {
    this.holds++;
  }

  /** Whether a view handed on still holds it, beside the socket that reads into it. */
  heldElsewhere(): boolean {
    return this.holds > 1;
  }

  /** A free buffer, held once (by the socket that will read into it). */
  static take(): ReadBuffer {
    const b = free.pop() ?? new ReadBuffer();
    b.holds = 1;
    return b;
  }
}

/** Free buffers on hand now: for tests. */
export function freeReadBuffers(): number {
  return free.length;
}

/** What a closed socket is handed as its next read buffer: it reads no more. */
const NO_MORE_READS = Buffer.alloc(0);

/**
 * The recycled buffers one socket reads into through onread: `next` is the socket's buffer source
 * (node calls it before each read), and the buffer of the last read is held until then. Bytes are
 * passed on as views of that buffer (writeTo), each holding it until written.
 */
export class SocketReadBuffers {
  /** The buffer the last read went into; null before the first and once closed. */
  current: ReadBuffer | null = null;
  private closed = false;

  /** onread's buffer source: lets the last buffer go and takes the next. */
  readonly next = (): Buffer => {
    this.current?.release();
    if (this.closed) {
      this.current = null;
      return NO_MORE_READS;
    }
    const next = ReadBuffer.take();
    this.current = next;
    return next.data;
  };

  /** Writes the last read's first `nread` bytes to `socket` without a copy; socket.write's answer. */
  writeTo(socket: Socket, nread: number): boolean {
    const buffer = this.current!;
    buffer.hold();
    return socket.write(buffer.data.subarray(0, nread), buffer.release);
  }

  /** The socket is done reading: its buffer goes back (once any view still being written is). */
  close(): void {
    this.closed = true;
    this.current?.release();
    this.current = null;
  }
}
