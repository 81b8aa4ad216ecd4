/**
 * A TCP relay in front of a backend that can go silent the way a broken network path does: the
 * connections open at that moment stay open and carry nothing either way, with no FIN, no RST and
 * no error on either side (a host gone, a NAT or firewall that dropped the connection's state).
 * Connections made afterwards are relayed as before.
 */
import net, { type AddressInfo, type Server, type Socket } from 'node:net';

export interface SilenceableRelay {
  /** `127.0.0.1:port`, where clients connect. */
  readonly address: string;
  /** Connections the relay has taken so far. */
  readonly accepted: number;
  /** From now on the connections open now deliver nothing (bytes are read and dropped). */
  goSilent(): void;
  close(): Promise<void>;
}

/** Starts a relay on loopback to `target` (`host:port`). */
export async function silenceableRelay(target: string): Promise<SilenceableRelay> {
  const colon = target.lastIndexOf(':');
  const host = target.slice(0, colon);
  const port = Number(target.slice(colon + 1));
  const pairs = new Set<{ client: Socket; backend: Socket; silent: boolean }>();
  let accepted = 0;
  const server: Server = net.createServer((client) => {
    const backend = net.connect(port, host);
    const pair = { client, backend, silent: false };
    pairs.add(pair);
    accepted++;
    client.on('data', (d: Buffer) => pair.silent || backend.write(d));
    backend.on('data', (d: Buffer) => pair.silent || client.write(d));
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      backend.destroy();
    };
    for (const socket of [client, backend]) {
      socket.on('close', end);
      socket.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get accepted() {
      return accepted;
    },
    goSilent: () => {
      for (const p of pairs) p.silent = true;
    },
    close: () => {
      for (const p of pairs) {
        p.client.destroy();
        p.backend.destroy();
      }
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
