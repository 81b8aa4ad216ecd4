/**
 * Reads of accepted plain-TCP client sockets through `onread` into one buffer all of them share,
 * the way upstream connections read (upstream/read-buffers.ts), instead of a fresh 64 KiB buffer
 * per read pushed through the socket's Readable ('data'). That path allocates and frees a backing
 * store per read and schedules a tick to read more: about two microseconds of a proxied request
 * (bench/README.md). One buffer serves every socket because each read is handed to its callback
 * and used up before the event loop reads the next: the request parser copies what it keeps.
 *
 * node:net offers `onread` only to sockets it connects, not to those a server accepts; the two
 * private slots it keeps the option in are found once, by constructing a socket with the option
 * and looking for them, and a socket is switched only where that worked. Where it does not (a
 * future node, a TLS socket, a socket with bytes already buffered), the caller reads 'data'.
 */
import net, { type Socket } from 'node:net';

const SHARED_SIZE = 64 * 1024;
const shared = Buffer.allocUnsafeSlow(SHARED_SIZE);

interface Slots {
  buffer: symbol;
  callback: symbol;
}

function findSlots(): Slots | undefined {
  try {
    const buffer = Buffer.alloc(1);
    const callback = (): boolean => true;
    // `onread` is typed for net.connect() only; the constructor takes it the same way.
    const probe = new net.Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof net.Socket>[0]);
    const own = probe as unknown as Record<symbol, unknown>;
    const symbols = Object.getOwnPropertySymbols(probe);
    const bufferSlot = symbols.find((s) => own[s] === buffer);
    const callbackSlot = symbols.find((s) => own[s] === callback);
    probe.destroy();
    if (bufferSlot === undefined || callbackSlot === undefined) return undefined;
    return { buffer: bufferSlot, callback: callbackSlot };
  } catch {
    return undefined;
  }
}

const slots = findSlots();

interface UserBufferHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
}

/**
 * Switches `socket`'s reads to `onRead(nread, buffer)` (the bytes are `buffer[0, nread)`, valid
 * until it returns); false when it cannot be, and the socket still reads into 'data'.
 * End, errors and pause()/resume() work as before.
 */
export function readIntoSharedBuffer(socket: Socket, onRead: (nread: number, buffer: Buffer) => void): boolean {
  if (slots === undefined || socket.readableLength > 0 || 'encrypted' in socket) return false;
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const own = socket as unknown as Record<symbol, unknown>;
  own[slots.buffer] = shared;
  own[slots.callback] = (nread: number, buffer: Buffer): boolean => {
    onRead(nread, buffer);
    return true;
  };
  handle.useUserBuffer(shared);
  return true;
}

/**
 * A socket switched by readIntoSharedBuffer goes back to being read as a stream: each read is
 * copied out of the shared buffer and pushed ('data', pipe()), and a full stream stops reading
 * until it is read again. For a connection handed to someone else (an upgrade's tunnel).
 */
export function readAsStream(socket: Socket): void {
  if (slots === undefined) return;
  const own = socket as unknown as Record<symbol, unknown>;
  if (own[slots.buffer] !== shared) return;
  own[slots.callback] = (nread: number, buffer: Buffer): boolean => socket.push(Buffer.from(buffer.subarray(0, nread)));
}
