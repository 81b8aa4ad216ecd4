/**
 * net.connect() for the data plane's plain (not TLS) connections to backends, with its options
 * shaped so that node 20's Socket constructor stays on V8's fast path.
 *
 * Why: net.Socket's constructor copies what it is given (`options = { ...options }`) and then sets
 * allowHalfOpen, emitClose, autoDestroy and decodeStrings on the copy. On V8 11.3 (node 20) adding
 * a property to an object made by spread goes to the runtime and makes a fresh hidden class each
 * time — about 10 µs per socket, measured as 23 → 12 µs for a connect that fails at once, and as
 * much as a new connection's other JavaScript in the L4 proxy. When the options already carry those
 * four fields, the copy has them and the constructor's writes are plain stores. The values given
 * here are the ones the constructor writes anyway (allowHalfOpen as the caller asks). Node 22
 * (V8 12) takes the fast path either way. Accepted sockets are shaped the same way by
 * accepted-sockets.ts; the TLS sockets node builds around them, and TLS connections to backends, still pay.
 *
 * One literal with every field in one order keeps the constructor's copies of one hidden class.
 */
import net, { type OnReadOpts, type Socket } from 'node:net';

export interface PlainConnect {
  readonly host: string;
  readonly port: number;
  /** Keep the socket writable after the peer's FIN (an L4 session's half-close). Default false. */
  readonly allowHalfOpen?: boolean;
  /** TCP keep-alive with this initial delay (ms); undefined: off. */
  readonly keepAliveMs?: number;
  /** Reads into the caller's buffers instead of a fresh one per read. */
  readonly onread?: OnReadOpts;
}

/** Connects with Nagle off (every caller writes whole messages). */
export function connectPlain(o: PlainConnect): Socket {
  const options: net.TcpNetConnectOpts & Record<'emitClose' | 'autoDestroy' | 'decodeStrings', boolean> = {
    allowHalfOpen: o.allowHalfOpen === true,
    emitClose: false,
    autoDestroy: true,
    decodeStrings: false,
    host: o.host,
    port: o.port,
    noDelay: true,
    keepAlive: o.keepAliveMs !== undefined,
    keepAliveInitialDelay: o.keepAliveMs ?? 0,
    onread: o.onread,
  };
  return net.connect(options);
}
