/** A raw TCP backend for tests that must say exactly which bytes a backend sends back. */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface RawServer {
  address: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Every request head received, in order. */
  received: string[];
  close(): Promise<void>;
}

/**
 * Answers each complete request head (`\r\n\r\n`) with `answer(head, socket, n)`; n counts requests
 * on that connection (1 for the first). Request bodies are not read: they would be taken for heads.
 */
export async function rawServer(answer: (head: string, socket: Socket, n: number) => void): Promise<RawServer> {
  const state = { connections: 0, received: [] as string[] };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let n = 0;
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end + 4);
        buffered = buffered.slice(end + 4);
        state.received.push(head);
        answer(head, socket, ++n);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    received: state.received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
