/**
 * The built-in client-side server against raw client sockets: the bytes a client sends and the
 * bytes it gets back, for what node:http's server would do in its place (framing, pipelining,
 * Expect, refusals, timeouts, half-close, drain). The forwarder's behaviour on top of it is
 * covered by the forwarder suites and the e2e tests, which run on this server by default.
 */
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRequest, ProxyResponse, RequestListener } from '../src/proxy/exchange.js';
import { TCP_IOS, type TcpIo } from '../src/runtime/raw-tcp-self-test.js';
import { Http1Server } from '../src/server/http1-server.js';
import { waitFor } from './helpers.js';

/** How the server under test moves bytes: every case runs on both (describe.each below). */
let io: TcpIo = 'handles';

const servers: Http1Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function serve(listener: RequestListener, settings: Partial<Http1Server['settings']> = {}): Promise<{ server: Http1Server; port: number }> {
  const server = new Http1Server(
    { maxHeaderSize: 16_384, headersTimeoutMs: 5_000, requestTimeoutMs: 0, keepAliveTimeoutMs: 5_000, ...settings },
    listener,
    100,
    { io },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A raw client: everything it received so far, and whether the server closed. */
function client(port: number): { socket: Socket; received: () => string; closed: () => boolean } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  return { socket, received: () => data, closed: () => closed };
}

const hello: RequestListener = (req, res) => {
  const body = `${req.method} ${req.url}`;
  res.writeHead(200, ['Content-Length', String(body.length), 'Date', 'x']);
  res.end(body);
};

describe.each(TCP_IOS)('Http1Server (the built-in client-side server) on %s', (kind) => {
  beforeAll(() => {
    io = kind;
  });

  it('answers requests one after another on a kept-alive connection', async () => {
    const { port } = await serve(hello);
    const c = client(port);
    c.socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.received().endsWith('GET /a'));
    c.socket.write('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.received().endsWith('GET /b'));
    expect(c.received()).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nDate: x\r\nKeep-Alive: timeout=5\r\n\r\nGET /aHTTP/1.1 200 OK\r\nContent-Length: 6\r\nDate: x\r\nKeep-Alive: timeout=5\r\n\r\nGET /b',
    );
    expect(c.closed()).toBe(false);
  });

  it('answers pipelined requests in order, even when a later one is ready first', async () => {
    const held: ProxyResponse[] = [];
    const { port } = await serve((req, res) => {
      if (req.url === '/slow') return void held.push(res);
      hello(req, res);
    });
    const c = client(port);
    c.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => held.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    // The second request waits its turn: nothing may go out before the first answer.
    expect(c.received()).toBe('');
    held[0]!.writeHead(200, ['Content-Length', '4', 'Date', 'x']);
    held[0]!.end('slow');
    await waitFor(() => c.received().endsWith('GET /fast'));
    expect(c.received().indexOf('slow')).toBeLessThan(c.received().indexOf('GET /fast'));
  });

  it('frames a body of unknown length chunked for HTTP/1.1 and by the close for HTTP/1.0; HEAD gets no body', async () => {
    const { port } = await serve((req, res) => {
      res.writeHead(200, ['Date', 'x', ...(req.url === '/len' ? ['Content-Length', '5'] : [])]);
      res.write('he');
      res.end('llo');
    });
    const one = client(port);
    one.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => one.received().endsWith('0\r\n\r\n'));
    expect(one.received()).toBe('HTTP/1.1 200 OK\r\nDate: x\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n');
    const old = client(port);
    old.socket.write('GET / HTTP/1.0\r\n\r\n');
    await waitFor(() => old.closed());
    expect(old.received()).toBe('HTTP/1.1 200 OK\r\nDate: x\r\nConnection: close\r\n\r\nhello');
    const oldKeep = client(port);
    oldKeep.socket.write('GET /len HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await waitFor(() => oldKeep.received().endsWith('hello'));
    expect(oldKeep.received()).toBe('HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello');
    expect(oldKeep.closed()).toBe(false);
    const head = client(port);
    head.socket.write('HEAD /len HTTP/1.1\r\nHost: x\r\n\r\nGET /len HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => head.received().endsWith('hello'));
    expect(head.received()).toBe(
      'HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nHTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello',
    );
  });

  it('answers Expect: 100-continue before the final answer, and 417 to any other expectation', async () => {
    const { port } = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200, ['Content-Length', String(body.length), 'Date', 'x']);
        res.end(body);
      });
    });
    const c = client(port);
    c.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    await waitFor(() => c.received() === 'HTTP/1.1 100 Continue\r\n\r\n');
    c.socket.write('body');
    await waitFor(() => c.received().endsWith('body'));
    const other = client(port);
    other.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: something\r\n\r\nbody');
    await waitFor(() => other.closed());
    expect(other.received()).toMatch(/^HTTP\/1\.1 417 /);
  });

  it("refuses with node:http's answers: no Host 400, CONNECT 400, an oversized head 431, a malformed request 400", async () => {
    const seen: string[] = [];
    const { port } = await serve(
      (req, res) => {
        seen.push(req.url ?? '');
        hello(req, res);
      },
      { maxHeaderSize: 1024 },
    );
    const cases: Array<[string, RegExp]> = [
      ['GET / HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', /^HTTP\/1\.1 400 /],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /^HTTP\/1\.1 400 /],
    ];
    for (const [request, answer] of cases) {
      const c = client(port);
      c.socket.write(request);
      await waitFor(() => c.closed());
      expect(c.received()).toMatch(answer);
    }
    expect(seen).toEqual([]);
  });

  it('gives 408 to a head that takes too long, and closes a keep-alive connection left idle', async () => {
    const { port } = await serve(hello, { headersTimeoutMs: 300, keepAliveTimeoutMs: 300 });
    const slow = client(port);
    slow.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const idle = client(port);
    idle.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => idle.received().endsWith('GET /'));
    await waitFor(() => slow.closed() && idle.closed(), 3_000);
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
    // keepAliveTimeoutMs 300 rounds down to no whole second: no Keep-Alive header then.
    expect(idle.received()).toBe('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: x\r\n\r\nGET /');
  });

  it('tells the listener when its client leaves before the answer', async () => {
    let closedSeen = false;
    let destroyedSeen = false;
    const { port } = await serve((_req, res) => {
      res.on('close', () => {
        closedSeen = true;
        destroyedSeen = res.destroyed;
      });
    });
    const c = client(port);
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    c.socket.end();
    await waitFor(() => closedSeen);
    expect(destroyedSeen).toBe(true);
  });

  it('serves an upgrade request as a plain one and closes after it', async () => {
    const { port } = await serve(hello);
    const c = client(port);
    c.socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello');
    // Closed right after the answer, not at the (5 s) keep-alive timeout.
    await waitFor(() => c.closed(), 1_000);
    expect(c.received()).toBe('HTTP/1.1 200 OK\r\nContent-Length: 7\r\nDate: x\r\nConnection: close\r\n\r\nGET /ws');
  });

  it("hands a chunked body over de-chunked, and never takes its trailers for the next request's headers", async () => {
    const seen: Array<{ url: string; headers: string[]; body: string }> = [];
    const { port } = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.rawHeaders, body });
        hello(req, res);
      });
      req.resume();
    });
    const c = client(port);
    c.socket.write(
      'POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Admin: yes\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    await waitFor(() => seen.length === 2);
    expect(seen[0]).toMatchObject({ url: '/one', body: 'wikipedia' });
    expect(seen[1]).toEqual({ url: '/two', headers: ['Host', 'x'], body: '' });
  });

  it('hands over every header of a long head, and the target with them', async () => {
    const seen: Array<{ url: string; headers: string[] }> = [];
    const { port } = await serve((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.rawHeaders });
      hello(req, res);
    });
    const many = Array.from({ length: 70 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
    const c = client(port);
    c.socket.write(`GET /long?q=1 HTTP/1.1\r\nHost: x\r\n${many}\r\nGET /short HTTP/1.1\r\nHost: y\r\n\r\n`);
    await waitFor(() => seen.length === 2);
    expect(seen[0]!.url).toBe('/long?q=1');
    expect(seen[0]!.headers.length).toBe(2 * 71);
    expect(seen[0]!.headers.slice(-2)).toEqual(['X-H69', 'v69']);
    expect(seen[1]).toEqual({ url: '/short', headers: ['Host', 'y'] });
  });

  it('parses requests however their bytes are split across reads', async () => {
    const seen: string[] = [];
    const { port } = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${req.rawHeaders.join(',')} [${body}]`);
        hello(req, res);
      });
      req.resume();
    });
    const stream =
      'GET /a HTTP/1.1\r\nHost: x\r\nX-One: 1\r\n\r\n' +
      'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world' +
      'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: t\r\n\r\n' +
      'GET /d HTTP/1.1\r\nHost: x\r\n\r\n';
    const expected = [
      'GET /a Host,x,X-One,1 []',
      'POST /b Host,x,Content-Length,11 [hello world]',
      'PUT /c Host,x,Transfer-Encoding,chunked [abcde]',
      'GET /d Host,x []',
    ];
    // Cut at every offset in turn (each piece a read of its own), a few offsets per connection.
    for (let start = 1; start < stream.length; start += 9) {
      seen.length = 0;
      const c = client(port);
      c.socket.setNoDelay(true);
      const cuts = [start, start + 4, start + 17].filter((x) => x < stream.length);
      let from = 0;
      for (const cut of cuts) {
        c.socket.write(stream.slice(from, cut));
        from = cut;
        await new Promise((r) => setTimeout(r, 2));
      }
      c.socket.write(stream.slice(from));
      await waitFor(() => seen.length === 4);
      expect(seen).toEqual(expected);
      c.socket.destroy();
    }
  });

  it('refuses a header value that would split the response', async () => {
    let thrown: unknown;
    const { port } = await serve((_req, res) => {
      try {
        res.writeHead(200, ['X-Evil', 'a\r\nSet-Cookie: stolen=1']);
      } catch (err) {
        thrown = err;
        res.writeHead(502, ['Content-Length', '0']);
        res.end();
      }
    });
    const c = client(port);
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.received().includes('\r\n\r\n'));
    expect((thrown as { code?: string }).code).toBe('ERR_INVALID_CHAR');
    expect(c.received()).toMatch(/^HTTP\/1\.1 502 /);
    expect(c.received()).not.toContain('stolen');
  });

  it('on close, ends idle connections at once and answers the one in progress with Connection: close', async () => {
    const held: Array<{ req: ProxyRequest; res: ProxyResponse }> = [];
    const { server, port } = await serve((req, res) => void held.push({ req, res }));
    const idle = client(port);
    const busy = client(port);
    busy.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => held.length === 1);
    let closed = false;
    server.close(() => (closed = true));
    server.closeIdleConnections();
    // The idle connection never sent a byte: node:http counts it as waiting for a head, and so
    // does this server, so it stays until its head timeout or the drain's end.
    held[0]!.res.writeHead(200, ['Content-Length', '2', 'Date', 'x']);
    held[0]!.res.end('ok');
    await waitFor(() => busy.closed());
    expect(busy.received()).toBe('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\nConnection: close\r\n\r\nok');
    expect(idle.closed()).toBe(false);
    server.closeAllConnections();
    await waitFor(() => closed && idle.closed());
  });
  it('sends the whole of a large last answer to a client that half-closes while it is still being written', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 0x62);
    const { port } = await serve((_req, res) => {
      res.writeHead(200, ['Content-Length', String(body.length), 'Date', 'x', 'Connection', 'close']);
      res.end(body);
    });
    // The request and the FIN arrive together: the server has answered (and queued its own FIN)
    // when it reads the client's, long before 8 MiB have gone out.
    const socket = connect(port, '127.0.0.1', () => socket.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    sockets.push(socket);
    socket.on('error', () => {});
    let received = 0;
    let closed = false;
    socket.on('data', (d: Buffer) => (received += d.length));
    socket.on('close', () => (closed = true));
    await waitFor(() => closed, 10_000);
    expect(received).toBeGreaterThan(body.length);
  });
});
