/**
 * One end of an L4 session as the session drives it: reads into recycled buffers, writes with
 * back-pressure, half-close, close. Two kinds implement it: RawTcp (a libuv handle driven
 * directly, raw-tcp.ts), and SocketEnd (a net.Socket, socket-end.ts) where raw handles do not
 * behave on this node or the connection needs what only net.Socket does (a host name to resolve).
 */
import type { Socket } from 'node:net';
import type { ReadBuffer } from '../upstream/read-buffers.js';

export interface TcpPeer {
  readonly address: string;
  readonly port: number;
}

export interface TcpEndEvents {
  /**
   * Bytes read. `data` is valid until this returns; to keep it longer (a write that waits), hold
   * `buffer` (write() does), when there is one.
   */
  onRead(data: Buffer, buffer: ReadBuffer | undefined): void;
  /** The peer's FIN: nothing more will be read. */
  onEnd(): void;
  /** Every write that made write() return false has gone to the kernel. */
  onDrain(): void;
  /** Our FIN went out, after everything written (end()). */
  onFinished(): void;
  /** A read, write or FIN failed (`code`: ECONNRESET, EPIPE, …); the end must be closed. */
  onError(code: string): void;
}

export interface TcpEnd {
  /** Bytes read and written so far (written: handed to write()). */
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** Whether writes wait to go to the kernel. */
  readonly writing: boolean;
  /** Starts reading, and reporting to `events`. */
  start(events: TcpEndEvents): void;
  pause(): void;
  resume(): void;
  /**
   * Writes `data` (a view of `holds` when it is a read buffer's, held until written); false when
   * it waits to go to the kernel, and onDrain follows once nothing does.
   */
  write(data: Uint8Array, holds?: ReadBuffer): boolean;
  /** Writes `text` as latin1 bytes (an HTTP head), as write() does. */
  writeLatin1(text: string): boolean;
  /**
   * Writes `chunks` in order, as one write where it can, as write() does; `done` runs once they
   * have gone to the kernel, or the write failed, or the end was closed first. Until then the
   * chunks must stay as they are.
   */
  writev(chunks: readonly Uint8Array[], done?: () => void): boolean;
  /** Sends a FIN after everything written; onFinished follows. */
  end(): void;
  /**
   * Closes now: nothing more is read, written or reported. What the kernel holds is still sent,
   * then a FIN (a reset instead if bytes came in that were never read).
   */
  close(): void;
  /**
   * Hands the connection over as a paused net.Socket that reads as a stream once resumed (an HTTP
   * upgrade's tunnel pipes it): nothing more is reported to the events, and the caller closes it.
   */
  toSocket(): Socket;
  peer(): TcpPeer | undefined;
  local(): TcpPeer | undefined;
}
