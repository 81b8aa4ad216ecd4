/**
 * h2c with prior knowledge on a plain listener: a connection whose first bytes are the HTTP/2
 * preface is HTTP/2, any other HTTP/1.1. The first bytes are read, looked at, and put back
 * (unshift) before the socket is handed on paused; the taker resumes it.
 */
import type { Socket } from 'node:net';
import { HTTP2_PREFACE } from './http2-server.js';

/**
 * Calls `then(socket, isHttp2)` once enough of the first bytes are in to tell (up to the
 * preface's 24); a client that sends nothing within `timeoutMs`, or leaves, is closed and
 * `then` never runs.
 */
export function sniffPreface(socket: Socket, timeoutMs: number, then: (socket: Socket, http2: boolean) => void): void {
  let received: Buffer | undefined;
  const done = (http2: boolean) => {
    socket.off('data', onData);
    socket.off('error', onGone);
    socket.off('end', onGone);
    socket.setTimeout(0);
    socket.off('timeout', onGone);
    socket.pause();
    socket.unshift(received!);
    then(socket, http2);
  };
  const onData = (chunk: Buffer) => {
    received = received === undefined ? chunk : Buffer.concat([received, chunk]);
    const n = Math.min(received.length, HTTP2_PREFACE.length);
    if (received.compare(HTTP2_PREFACE, 0, n, 0, n) !== 0) return done(false);
    if (n === HTTP2_PREFACE.length) done(true);
  };
  const onGone = () => socket.destroy();
  socket.on('data', onData);
  socket.on('error', onGone);
  socket.on('end', onGone);
  socket.setTimeout(timeoutMs);
  socket.on('timeout', onGone);
}
