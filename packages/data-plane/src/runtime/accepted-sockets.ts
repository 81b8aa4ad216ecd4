/**
 * The sockets a listener accepts, built by the data plane rather than by node:net's own accept
 * callback, so that node 20 builds them on V8's fast path (plain-connect.ts says why the path is
 * slow: node's Socket constructor adds four properties to a spread copy of its options). node:net
 * builds each accepted socket from an options literal of its own, which the data plane cannot
 * shape. Built from options that already carry the four fields, a connection through the L4
 * listener costs the data plane 185–217 µs of CPU instead of 263–289 (README, "TCP proxying against
 * peers"): more than the constructor's own 10 µs, so what the socket does later gains too.
 *
 * This replaces node's `onconnection` on the listening handle with one that does what node's does
 * for a server of this kind: a Socket on the accepted handle, Nagle off, the server's
 * connection count (`_connections`, which close() waits on and each socket's destroy lowers), the
 * socket's `server` / `_server`, the 'connection' event and the `net.server.socket` diagnostics
 * channel. Anything else — an accept error, a server with `maxConnections` — goes to node's own.
 * Where the server does not look as expected (another node), node's accept stays in place:
 * nothing is lost but the speed. The TLS listeners accept plain sockets too (tls-acceptor.ts wraps
 * them), so they gain the same; the TLSSocket node builds around each still pays.
 */
import diagnostics from 'node:diagnostics_channel';
import net, { type Server, type Socket } from 'node:net';

type OnConnection = (this: unknown, err: number, clientHandle: unknown) => void;

interface ServerInternals {
  _handle?: { onconnection?: OnConnection; setNoDelay?: (enable: boolean) => number } | null;
  _connections?: number;
  maxConnections?: number;
}

interface SocketInternals {
  _handle?: unknown;
  server?: Server;
  _server?: Server;
}

const serverSocketChannel = diagnostics.channel('net.server.socket');

/** The accept callbacks this module installed. */
const installed = new WeakSet<OnConnection>();

/** Whether `server` builds its accepted sockets here now (it listens, and its node is the one this module knows). */
export function acceptsOnFastPath(server: Server): boolean {
  const onconnection = (server as unknown as ServerInternals)._handle?.onconnection;
  return onconnection !== undefined && installed.has(onconnection);
}

/**
 * The server of a proxy listener: accepted sockets stay writable after the client's FIN (a client
 * that half-closes after its last request still gets the answers; an L4 session passes the FIN
 * on), Nagle off, and from `listening` on built here (see the module's comment).
 */
export function createListenerServer(onConnection: (socket: Socket) => void, onHandle?: (handle: unknown) => void): Server {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
  server.on('listening', () => install(server, onHandle));
  return server;
}

/**
 * With `onHandle`, accepted connections are handed over as libuv handles, with no net.Socket (the
 * L4 proxy drives them through raw-tcp.ts); they are not counted in the server's connections, so
 * close()'s callback does not wait for them. A server that takes connections only through node's
 * own accept (maxConnections set, another node) still gives sockets to `onConnection`.
 */
function install(server: Server, onHandle: ((handle: unknown) => void) | undefined): void {
  const internals = server as unknown as ServerInternals;
  const handle = internals._handle;
  if (handle === null || handle === undefined || typeof handle.onconnection !== 'function' || typeof internals._connections !== 'number') return;
  const nodes = handle.onconnection;
  // Linux gives an accepted socket the listening socket's TCP_NODELAY: set once here, it saves a
  // system call per connection (what HAProxy does). Elsewhere, or if it fails, each socket sets it.
  const inheritsNoDelay = process.platform === 'linux' && typeof handle.setNoDelay === 'function' && handle.setNoDelay(true) === 0;
  handle.onconnection = function onconnection(this: unknown, err: number, clientHandle: unknown): void {
    if (err !== 0 || clientHandle === undefined || internals.maxConnections) return nodes.call(this, err, clientHandle);
    if (onHandle !== undefined) {
      if (!inheritsNoDelay) (clientHandle as { setNoDelay(enable: boolean): number }).setNoDelay(true);
      return onHandle(clientHandle);
    }
    // Every field node's constructor writes is here already, with the value it writes (one literal, one hidden class).
    const socketOptions = {
      allowHalfOpen: true,
      emitClose: false,
      autoDestroy: true,
      decodeStrings: false,
      handle: clientHandle,
      pauseOnCreate: false,
      readable: true,
      writable: true,
      // What the socket records as set (so a later setNoDelay(true) is no system call); true only when inherited.
      noDelay: inheritsNoDelay,
    };
    const socket = new net.Socket(socketOptions as ConstructorParameters<typeof net.Socket>[0]);
    if ((socket as unknown as SocketInternals)._handle !== clientHandle) {
      // Not the constructor this module knows (a future node): node's accept from now on; this one
      // connection is closed, as it would be on any failed accept.
      handle.onconnection = nodes;
      socket.destroy();
      return;
    }
    if (!inheritsNoDelay) socket.setNoDelay(true);
    internals._connections!++;
    const own = socket as Socket & SocketInternals;
    own.server = server;
    own._server = server;
    server.emit('connection', socket);
    if (serverSocketChannel.hasSubscribers) serverSocketChannel.publish({ socket });
  };
  installed.add(handle.onconnection);
}
