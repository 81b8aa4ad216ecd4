/**
 * Socket read buffers that are used again instead of left to the garbage collector. Node's
 * sockets read into a fresh 64 KiB buffer each time; at proxy rates those become hundreds of
 * megabytes a second of garbage that V8 collects only after 64 MiB of "external" growth, and
 * glibc keeps much of what is freed (bench/README.md, streaming memory). Upstream connections
 * read through `onread` into buffers from this free list instead. A large response body is
 * passed on as views of the buffer it was read into (no copy); each view holds the buffer until
 * the client socket has written it, then the buffer returns here for the next read.
 */

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
