/**
 * Mutated traffic against the built-in server and client: valid requests and responses with bytes
 * flipped, inserted, cut and repeated, split into random reads. Whatever arrives, the process must
 * not throw, every exchange must settle (answered, refused or failed; never left hanging), and no
 * connection may be left behind. The mutations come from a fixed seed, so a failure repeats;
 * counts are bounded so the suite stays quick.
 */
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RequestListener } from '../src/proxy/exchange.js';
import { Http1Server } from '../src/server/http1-server.js';
import { Http1Pool } from '../src/upstream/http1-pool.js';
import type { UpstreamHandler } from '../src/upstream/upstream.js';
import { waitFor } from './helpers.js';
import { generator, mutate, trickle } from './mutations.js';

const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => void uncaught.push(err);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  process.off('uncaughtException', onUncaught);
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('mutated traffic', () => {
  it('the built-in server settles every connection and never throws', async () => {
    process.on('uncaughtException', onUncaught);
    const r = generator(7);
    // Answers in several ways, so that mutations meet every path of a response.
    const listener: RequestListener = (req, res) => {
      req.on('error', () => {});
      switch ((req.url?.length ?? 0) % 4) {
        case 0:
          res.writeHead(200, ['Content-Length', '2']);
          res.end('ok');
          break;
        case 1:
          req.on('end', () => {
            res.writeHead(200, []);
            res.write('a');
            res.end('b');
          });
          req.resume();
          break;
        case 2:
          setTimeout(() => {
            res.writeHead(204, []);
            res.end();
          }, 2);
          break;
        default:
          res.destroy();
      }
    };
    const server = new Http1Server({ maxHeaderSize: 2048, headersTimeoutMs: 500, requestTimeoutMs: 1000, keepAliveTimeoutMs: 500 }, listener, 100);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let closed = false;
    cleanups.push(() => {
      if (!closed) server.closeAllConnections();
    });
    const { port } = server.address() as AddressInfo;
    const seeds = [
      'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
      'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
      'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: t\r\n\r\n',
      'GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxyz',
      'HEAD /hd HTTP/1.1\r\nHost: a\r\n\r\n',
    ];
    let settled = 0;
    const total = 300;
    for (let batch = 0; batch < total / 30; batch++) {
      await Promise.all(
        Array.from({ length: 30 }, () => {
          const data = mutate(seeds[r(seeds.length)]!.repeat(1 + r(3)), r, seeds);
          const end = r(2) === 0;
          return new Promise<void>((resolve) => {
            const socket = connect(port, '127.0.0.1', () => trickle(socket, data, r, end));
            socket.on('data', () => {});
            socket.on('error', () => {});
            // The client gives up after a while at the latest; the server may close first.
            const timer = setTimeout(() => socket.destroy(), 200 + r(600));
            socket.on('close', () => {
              clearTimeout(timer);
              settled++;
              resolve();
            });
          });
        }),
      );
    }
    expect(settled).toBe(total);
    expect(uncaught).toEqual([]);
    // Every client has gone, so the server must have let every connection go too: net's close()
    // completes only when none is left (a connection kept half-open would hold it).
    server.close(() => (closed = true));
    await waitFor(() => closed, 3_000);
  });

  it('the built-in client settles every request and never throws, and leaves no connection behind', async () => {
    process.on('uncaughtException', onUncaught);
    const r = generator(11);
    const body = 'x'.repeat(20_000);
    const seeds = [
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
      `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n',
      'HTTP/1.0 200 OK\r\n\r\nuntil close',
      'HTTP/1.1 101 Switching\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n',
    ];
    const backend: Server = createServer((socket) => {
      socket.on('error', () => {});
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
          buffered = buffered.slice(end + 4);
          trickle(socket, mutate(seeds[r(seeds.length)]!, r, seeds), r, r(4) === 0);
        }
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => backend.close(() => resolve())));
    const pool = new Http1Pool(`127.0.0.1:${(backend.address() as AddressInfo).port}`, {
      connectTimeoutMs: 1000,
      headersTimeoutMs: 300,
      bodyTimeoutMs: 300,
      keepAliveTimeoutMs: 200,
      connections: 20,
    });
    cleanups.push(() => pool.destroy());
    let completed = 0;
    let failed = 0;
    const total = 600;
    for (let batch = 0; batch < total / 40; batch++) {
      await Promise.all(
        Array.from(
          { length: 40 },
          () =>
            new Promise<void>((resolve) => {
              let resume: (() => void) | undefined;
              const handler: UpstreamHandler = {
                onConnect: (abort) => {
                  if (r(20) === 0) setTimeout(() => abort(new Error('client left')), r(5));
                },
                onHeaders: (_status, _headers, resumeBody) => {
                  resume = resumeBody;
                  return true;
                },
                onData: (_chunk, release) => {
                  if (release !== undefined) setImmediate(release);
                  // Now and then full for a moment, as a slow client makes it.
                  if (r(3) !== 0) return true;
                  setTimeout(() => resume?.(), 1);
                  return false;
                },
                onComplete: () => {
                  completed++;
                  resolve();
                },
                onError: () => {
                  failed++;
                  resolve();
                },
              };
              pool.dispatch({ path: '/', method: r(2) === 0 ? 'GET' : 'HEAD', headers: ['host', 'x'], body: null }, handler);
            }),
        ),
      );
    }
    expect(completed + failed).toBe(total);
    // The mutations leave most exchanges intact: the client does not fail good answers.
    expect(completed).toBeGreaterThan(total / 4);
    expect(uncaught).toEqual([]);
    await waitFor(() => pool.stats.connections === 0, 3_000);
  });
});
