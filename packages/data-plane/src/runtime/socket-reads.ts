/**
 * Reads of accepted plain-TCP sockets through `onread`, the way upstream connections read
 * (upstream/read-buffers.ts), instead of a fresh 64 KiB buffer per read pushed through the
 * socket's Readable ('data'). That path allocates and frees a backing store per read and
 * schedules a tick to read more: about six microseconds of a proxied request on AMD EPYC
 * (bench/README.md). Two ways:
 *
 * - readIntoSharedBuffer: every socket reads into one buffer (sharedReadBuffer), for a reader that
 *   uses each read up before it returns (the HTTP/1 server: the request parser copies what it keeps).
 * - readIntoBuffers: each read goes into a buffer from the caller's source, for a reader that
 *   passes the bytes on as they are (an L4 session writes them to the backend).
 *
 * node:net offers `onread` only to sockets it connects, not to those a server accepts; the
 * private slots it keeps the option in are found once, by constructing a socket with the option
 * and looking for them, and a socket is switched only where that worked. Where it does not (a
 * future node, a TLS socket, a socket with bytes already buffered), the caller reads 'data'.
 * End, errors, pause() and resume() work as they do on any socket that reads through onread.
 */
import net, { type Socket } from 'node:net';

const SHARED_SIZE = 64 * 1024;
/**
 * The one buffer that connections whose reader uses each read before it returns read into (here
 * and raw-tcp.ts's sharedReads): the event loop reads the next only after the last callback returned.
 */
export const sharedReadBuffer = Buffer.allocUnsafeSlow(SHARED_SIZE);

interface Slots {
  /** The buffer the next read goes into. */
  buffer: symbol;
  /** What is called with each read. */
  callback: symbol;
  /** Where the buffer after each read comes from (null: the same buffer again). */
  source: symbol;
}

function own(socket: Socket): Record<symbol, unknown> {
  return socket as unknown as Record<symbol, unknown>;
}

/** The slots of a socket constructed with `onread: { buffer, callback }`, each holding what it was given. */
function probe(buffer: Buffer | (() => Buffer), callback: () => boolean): { slotOf: (value: unknown) => symbol | undefined } {
  // `onread` is typed for net.connect() only; the constructor takes it the same way.
  const socket = new net.Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof net.Socket>[0]);
  const values = own(socket);
  const symbols = Object.getOwnPropertySymbols(socket);
  socket.destroy();
  return { slotOf: (value) => symbols.find((s) => values[s] === value) };
}

function findSlots(): Slots | undefined {
  try {
    const callback = (): boolean => true;
    const buffer = Buffer.alloc(1);
    const source = (): Buffer => buffer;
    const withBuffer = probe(buffer, callback);
    const withSource = probe(source, callback);
    const found = { buffer: withBuffer.slotOf(buffer), callback: withBuffer.slotOf(callback), source: withSource.slotOf(source) };
    if (found.buffer === undefined || found.callback === undefined || found.source === undefined) return undefined;
    return found as Slots;
  } catch {
    return undefined;
  }
}

const slots = findSlots();

interface UserBufferHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
}

/** The socket's handle, when `socket` can be switched to onread now. */
function switchable(socket: Socket): UserBufferHandle | undefined {
  if (slots === undefined || socket.readableLength > 0 || 'encrypted' in socket) return undefined;
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return undefined;
  return handle;
}

/**
 * Switches `socket`'s reads to `onRead(nread, buffer)` (the bytes are `buffer[0, nread)`, valid
 * until it returns); false when it cannot be, and the socket still reads into 'data'.
 */
export function readIntoSharedBuffer(socket: Socket, onRead: (nread: number, buffer: Buffer) => void): boolean {
  return switchReads(socket, sharedReadBuffer, null, (nread, buffer) => {
    onRead(nread, buffer);
    return true;
  });
}

/**
 * Switches `socket`'s reads to buffers from `next()`, called once now and again after each read;
 * `onRead(nread)` gets each read (the bytes are the last buffer's first `nread`, the caller's to
 * keep). False when it cannot be, and the socket still reads into 'data'.
 */
export function readIntoBuffers(socket: Socket, next: () => Buffer, onRead: (nread: number) => void): boolean {
  // The first buffer is taken only once the socket is known to switch.
  return switchReads(socket, next, next, (nread) => {
    onRead(nread);
    return true;
  });
}

/**
 * Fills the socket's onread slots and points its handle at the first buffer (`first`, or the
 * first `first()` gives); false when the socket cannot be switched (see switchable()).
 */
function switchReads(
  socket: Socket,
  first: Buffer | (() => Buffer),
  source: (() => Buffer) | null,
  callback: (nread: number, buffer: Buffer) => boolean,
): boolean {
  const handle = switchable(socket);
  if (handle === undefined || slots === undefined) return false;
  const buffer = typeof first === 'function' ? first() : first;
  const slot = own(socket);
  slot[slots.buffer] = buffer;
  slot[slots.source] = source;
  slot[slots.callback] = callback;
  handle.useUserBuffer!(buffer);
  return true;
}

/**
 * A socket switched to onread (by this module, or connected with it) goes back to being read as a
 * stream: reads go into the shared buffer, each is copied out and pushed ('data', pipe()), and a
 * full stream stops reading until it is read again. For a connection handed to someone else (an
 * upgrade's tunnel). A socket that reads into 'data' already is left as it is.
 */
export function readAsStream(socket: Socket): void {
  if (slots === undefined) return;
  const slot = own(socket);
  if (typeof slot[slots.callback] !== 'function') return;
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  slot[slots.buffer] = sharedReadBuffer;
  slot[slots.source] = null;
  slot[slots.callback] = (nread: number, buffer: Buffer): boolean => socket.push(Buffer.from(buffer.subarray(0, nread)));
  handle?.useUserBuffer?.(sharedReadBuffer);
}
