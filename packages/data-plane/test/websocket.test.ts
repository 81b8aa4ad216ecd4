/**
 * WebSocket through a whole node (in process, real loopback sockets, real `ws` clients and
 * servers), on every pairing of client-side server and upstream client: upgrades are routed and
 * picked like requests, tunnelled both ways, relayed as plain answers when the backend does not
 * switch, closed when silent for the route's idle timeout, and counted as connections by
 * least_connections. Other upgrades are served as plain requests, never tunnelled.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { call, startTestNode, waitFor, type TestNode, ENGINE_PAIRS } from './helpers.js';

interface WsBackend {
  name: string;
  address: string;
  server: Server;
  /** Upgrade requests' headers, in order; plain requests' too. */
  upgrades: IncomingMessage['headers'][];
  plain: IncomingMessage['headers'][];
  /** Open WebSocket connections. */
  readonly open: number;
  close(): Promise<void>;
}

/** What a backend answers to a plain GET /off/large: more than loopback's socket buffers hold. */
const LARGE = Buffer.alloc(16 * 1024 * 1024, 0x6c);

/** An HTTP server that echoes WebSocket messages (prefixed with its name) and answers plain requests with its name; `/forbidden` upgrades get 403. */
async function wsBackend(name: string): Promise<WsBackend> {
  const upgrades: IncomingMessage['headers'][] = [];
  const plain: IncomingMessage['headers'][] = [];
  const server = createServer((req, res) => {
    plain.push(req.headers);
    if (req.url === '/off/large') res.end(LARGE);
    else res.end(`${name} plain ${req.headers.upgrade ?? '-'}`);
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
  let open = 0;
  server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.headers);
    if (req.url === '/forbidden') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      open++;
      ws.on('close', () => open--);
      ws.on('message', (data, isBinary) => {
        if (isBinary) ws.send(data, { binary: true });
        else ws.send(`${name}:${data.toString()}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    upgrades,
    plain,
    get open() {
      return open;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function connectWs(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 8 * 1024 * 1024, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`unexpected ${res.statusCode}`), { status: res.statusCode })));
  });
}

function nextMessage(ws: WebSocket): Promise<WebSocket.RawData> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(data)));
}

describe.each(ENGINE_PAIRS)('WebSocket ($server server, $client upstream client)', ({ server, client }) => {
  let node: TestNode;
  let base: string;
  let a: WsBackend;
  let b: WsBackend;

  beforeAll(async () => {
    [a, b] = await Promise.all([wsBackend('a'), wsBackend('b')]);
    node = await startTestNode({ upstream: { client }, proxy: { server } });
    node.apply({
      pools: {
        one: { backends: [{ id: 'a', address: a.address }] },
        pair: {
          algorithm: 'least_connections',
          backends: [
            { id: 'a', address: a.address },
            { id: 'b', address: b.address },
          ],
        },
      },
      routes: {
        one: { match: { pathPrefix: '/' }, pools: [{ pool: 'one' }] },
        pair: { match: { pathPrefix: '/pair' }, pools: [{ pool: 'pair' }] },
        idle: { match: { pathPrefix: '/idle' }, pools: [{ pool: 'one' }], websocket: { enabled: true, idleTimeoutMs: 1000 } },
        off: { match: { pathPrefix: '/off' }, pools: [{ pool: 'one' }], websocket: { enabled: false, idleTimeoutMs: 300000 } },
      },
    });
    base = node.node.proxyUrl.replace('http://', 'ws://');
  });

  afterAll(async () => {
    await node.node.stop();
    await Promise.all([a.close(), b.close()]);
  });

  it('tunnels an upgrade both ways, with the forwarding headers and without hop-by-hop ones', async () => {
    const ws = await connectWs(`${base}/chat`, { headers: { 'keep-alive': 'timeout=5', 'proxy-authorization': 'Basic x', 'x-visible': '1' } });
    ws.send('hello');
    expect((await nextMessage(ws)).toString()).toBe('a:hello');
    const seen = a.upgrades.at(-1)!;
    expect(seen.upgrade).toBe('websocket');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['x-visible']).toBe('1');
    expect(seen['sec-websocket-key']).toBeDefined();
    ws.close();
    await waitFor(() => a.open === 0, 5_000, 'the backend side to close');
  });

  it('carries 1 MiB messages both ways, many at once, and keeps their order', async () => {
    const ws = await connectWs(`${base}/big`);
    const messages = Array.from({ length: 8 }, (_, i) => Buffer.alloc(1 << 20, 97 + i));
    const received: Buffer[] = [];
    const done = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        received.push(data as Buffer);
        if (received.length === messages.length) resolve();
      }),
    );
    for (const m of messages) ws.send(m);
    await done;
    expect(received.map((r) => r.length)).toEqual(messages.map((m) => m.length));
    expect(received.map((r) => r[0])).toEqual(messages.map((m) => m[0]));
    ws.close();
  });

  it('relays a plain answer when the backend does not switch protocols', async () => {
    await expect(connectWs(`${base}/forbidden`)).rejects.toMatchObject({ status: 403 });
  });

  it('serves an upgrade to another protocol, and one on a route without WebSocket, as plain requests', async () => {
    const h2c = await call(node.node.proxyUrl, '/plain', {
      headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' },
    });
    expect(h2c.status).toBe(200);
    expect(h2c.body.toString()).toBe('a plain -');
    await expect(connectWs(`${base}/off`)).rejects.toMatchObject({ status: 200 });
    expect(a.plain.at(-1)!.upgrade).toBeUndefined();
  });

  it('streams a large plain answer to an upgrade request whose client reads slowly', async () => {
    // Served as a plain request (the route tunnels nothing), the answer meets back-pressure: the
    // response must hear the socket drain, or it stalls with most of the body unsent.
    const socket = connect(Number(new URL(node.node.proxyUrl).port), '127.0.0.1');
    let received = 0;
    let ended = false;
    socket.on('data', (d: Buffer) => (received += d.length));
    socket.on('end', () => (ended = true));
    socket.on('error', () => {});
    socket.write(
      'GET /off/large HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    // A slow client: nothing read for a while, so the proxy's writes wait for the kernel.
    socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.resume();
    await waitFor(() => ended, 10_000);
    socket.destroy();
    expect(received).toBeGreaterThan(LARGE.length);
  });

  it('closes a tunnel that stays silent for the route idle timeout', async () => {
    const ws = await connectWs(`${base}/idle`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const started = Date.now();
    const code = await closed;
    // 1 s idle, checked on a 100 ms tick.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(code).toBe(1006);
  });

  it('counts an open tunnel as a connection for least_connections', async () => {
    const ws = await connectWs(`${base}/pair`);
    ws.send('who');
    const first = (await nextMessage(ws)).toString().split(':')[0]!;
    const other = first === 'a' ? 'b' : 'a';
    // Requests one at a time: the backend holding the tunnel has one in flight, the other none.
    for (let i = 0; i < 6; i++) expect((await call(node.node.proxyUrl, '/pair/http')).body.toString()).toBe(`${other} plain -`);
    ws.close();
  });

  it('delivers what the client sends right behind its upgrade request', async () => {
    // ws writes its first frame as soon as the socket opens: nothing waits for our 101.
    const ws = new WebSocket(`${base}/early`);
    const got = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.once('open', () => ws.send('early'));
    expect(await got).toBe('a:early');
    ws.close();
  });
});
