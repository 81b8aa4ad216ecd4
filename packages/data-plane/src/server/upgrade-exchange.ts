/**
 * node:http's `upgrade` event gives a request and a raw socket, not a response. This wraps them
 * in the built-in server's response over that socket, so that the forwarder answers an upgrade
 * request the same way whichever server parsed it: a tunnel takes the connection
 * (takeConnection), any other answer is written as a plain HTTP/1.1 response and the connection
 * closes after it.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { SocketEnd } from '../runtime/socket-end.js';
import { ClientResponse, type ExchangeConnection } from './client-exchange.js';

class UpgradeConnection implements ExchangeConnection {
  private taken = false;
  readonly keepAliveHeader = '';
  /** Only written to: the socket is read by whoever takes it, or not at all. */
  readonly out: SocketEnd;

  constructor(
    readonly socket: Socket,
    private readonly head: Buffer,
  ) {
    this.out = new SocketEnd(socket);
  }

  get client(): Socket {
    return this.socket;
  }

  resumeReading(): void {}

  responseDone(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  takeConnection(res: ClientResponse<IncomingMessage>): { socket: Socket; head: Buffer } | undefined {
    if (this.taken || res.headersSent || this.socket.destroyed) return undefined;
    this.taken = true;
    return { socket: this.socket, head: this.head };
  }
}

/** The response to an upgrade request node:http handed over with its socket and the bytes after its head. */
export function upgradeResponse(req: IncomingMessage, socket: Socket, head: Buffer): ClientResponse<IncomingMessage> {
  // node:http has let go of the socket: nothing else hears its errors.
  socket.on('error', () => {});
  const res = new ClientResponse(req, new UpgradeConnection(socket, head), false);
  // A plain answer that meets back-pressure waits for this (the forwarder pauses the backend).
  socket.on('drain', () => res.emit('drain'));
  socket.once('close', () => {
    if (!res.writableFinished) {
      res.destroyed = true;
      res.emitCloseOnce();
    }
  });
  return res;
}
