// Issue 6 end to end: real etcd, a control plane, a data plane (one process, so rate limits and
// retry budgets are exact) and real backends, under continuous load. Proves: killing one of three
// backends mid-load loses no idempotent request; a hanging backend costs clients at most
// requestMs; a backend answering 503 to everything sees only budget-limited retries; a flooding
// client address is held to its rate while another is unaffected; a smuggling corpus is refused
// without reaching a backend; 2,000 slowloris connections do not stop normal clients.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { load } from '../support/load.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cp: ControlPlane;
let dp: DataPlane;
/** b1..b3: the `web` pool; hang: sleeps; storm: the only backend of a pool that fails. */
let web: Backend[];
let hang: Backend;
let storm: Backend;

const REQUEST_MS = 800;
const RATE = 20;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  web = await Promise.all(['b1', 'b2', 'b3'].map((n) => Backend.start(n)));
  hang = await Backend.start('hang');
  storm = await Backend.start('storm');
  dp = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-r', extraArgs: ['--workers', '1'] });
  const pool = (backends: Backend[], extra: Record<string, unknown> = {}) => ({
    backends: backends.map((b) => ({ id: b.name, address: b.address })),
    ...extra,
  });
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: {
      // A dead backend is ejected after a few connect failures; the retries cover those.
      web: pool(web, { outlierDetection: { consecutiveGatewayErrors: 3, maxEjectionPercent: 34, baseEjectionMs: 60000 } }),
      hang: pool([hang], { timeouts: { requestMs: REQUEST_MS } }),
      storm: pool([storm]),
    },
    routes: {
      web: { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] },
      limited: { match: { pathPrefix: '/limited' }, pools: [{ pool: 'web' }], rateLimit: { requestsPerSecond: RATE, burst: RATE } },
      hang: { match: { pathPrefix: '/slow' }, pools: [{ pool: 'hang' }] },
      storm: { match: { pathPrefix: '/status/' }, pools: [{ pool: 'storm' }] },
    },
  });
  expect(res.status).toBe(200);
  await waitFor(async () => (await dp.appliedVersion()) === res.body.version, { message: 'the data plane to apply the config' });
});

afterAll(async () => {
  await dp?.stop();
  await cp?.stop();
  await Promise.allSettled([...(web ?? []), hang, storm].map((b) => b?.close()));
  await etcd?.stop();
});

/** A GET with node:http through `agent`; the status, or 0 on a transport error. */
function httpGet(url: string, agent: HttpAgent): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(name: string): Promise<number> {
  const res = await request(`${dp.adminUrl}/metrics`);
  const text = await res.body.text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

describe('resilience under load', () => {
  it('loses no idempotent request when one of three backends dies mid-load', async () => {
    const victim = web[1]!;
    const during = (async () => {
      await waitFor(() => victim.hits > 50, { message: 'load to reach the victim' });
      await victim.close();
      await delay(1_500);
    })();
    const statuses = await load(`${dp.url}/`, 8, during);
    const failed = statuses.filter((s) => s !== 200);
    expect(statuses.length).toBeGreaterThan(300);
    expect(failed).toEqual([]);
    expect(await metric('lb_dp_retries_total')).toBeGreaterThan(0);
  });

  it('answers 504 after requestMs when a backend hangs', async () => {
    const started = Date.now();
    const times = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const t0 = Date.now();
        const res = await request(`${dp.url}/slow?ms=10000`);
        await res.body.dump();
        return { status: res.statusCode, ms: Date.now() - t0 };
      }),
    );
    for (const t of times) {
      expect(t.status).toBe(504);
      // The upstream client's deadlines are checked on a 100 ms tick (upstream/connection-sweeper.ts):
      // never early, at most two ticks late; the rest of the slack is for a busy machine.
      expect(t.ms).toBeGreaterThanOrEqual(REQUEST_MS);
      expect(t.ms).toBeLessThan(REQUEST_MS + 700);
    }
    expect(Date.now() - started).toBeLessThan(REQUEST_MS + 1_000);
  });

  it('gives a pool that answers 503 to everything only budget-limited retries', async () => {
    const before = storm.hits;
    const seconds = 3;
    const statuses = await load(`${dp.url}/status/503`, 6, delay(seconds * 1000));
    const sent = statuses.length;
    const seen = storm.hits - before;
    const retries = seen - sent;
    expect(statuses.every((s) => s === 503)).toBe(true);
    // 20% of the requests plus 3 per second of the 10 s window (the budget started with this test).
    expect(retries).toBeGreaterThan(0);
    expect(retries).toBeLessThanOrEqual(Math.ceil(sent * 0.2) + 3 * 10 + 2);
    expect(await metric('lb_dp_retry_budget_exhausted_total')).toBeGreaterThan(0);
  });

  it('holds a flooding client address to its rate while another address is served', async () => {
    const seconds = 2;
    let stop = false;
    const end = delay(seconds * 1000).then(() => (stop = true));
    // node:http, because undici does not bind a local address.
    const flooder = new HttpAgent({ keepAlive: true, localAddress: '127.0.0.2' });
    const flood: number[] = [];
    const floodLoops = Array.from({ length: 6 }, async () => {
      while (!stop) flood.push(await httpGet(`${dp.url}/limited`, flooder));
    });
    const politeAgent = new HttpAgent({ keepAlive: true, localAddress: '127.0.0.3' });
    const polite: number[] = [];
    for (let i = 0; i < seconds * 5; i++) {
      polite.push(await httpGet(`${dp.url}/limited`, politeAgent));
      await delay(200);
    }
    await end;
    await Promise.all(floodLoops);
    flooder.destroy();
    politeAgent.destroy();
    const admitted = flood.filter((s) => s === 200).length;
    expect(flood.filter((s) => s === 429).length).toBeGreaterThan(admitted);
    // burst + rate × time (the polite client's loop may outlast the flood a little).
    expect(admitted).toBeLessThanOrEqual(RATE + RATE * (seconds + 0.5));
    expect(admitted).toBeGreaterThanOrEqual(RATE);
    expect(polite).toEqual(polite.map(() => 200));
  });
});

/** What a raw exchange got back (the first line), after the proxy answered or closed. */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => socket.destroy(), 2_000);
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out.split('\r\n')[0] ?? '');
    });
    socket.on('error', () => undefined);
    socket.write(data);
  });
}

/** Request smuggling and framing attacks (CL.TE, TE.CL, duplicate lengths, obs-fold, bad chunks…). */
const CORPUS: Array<[string, string]> = [
  ['CL+TE', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG'],
  ['TE+CL', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n'],
  ['duplicate CL, different', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde'],
  ['duplicate CL, same', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde'],
  ['CL list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nabcde'],
  ['CL plus sign', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nabcde'],
  ['CL negative', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n'],
  ['CL hex', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nabcde'],
  ['CL with a space inside', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nabcdefghijkl'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n'],
  ['obs-fold on TE', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'],
  ['space before colon', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
  ['TE not chunked last', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
  ['TE unknown coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ['TE vertical tab', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n'],
  ['TE twice, one bad', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n'],
  ['invalid chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ['chunk size overflow', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nabc\r\n0\r\n\r\n'],
  ['chunk size with 0x', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n'],
  ['chunk without its CRLF', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n'],
  ['negative chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n'],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\nX-A: b\n\n'],
  ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n'],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n'],
  ['space in a header name', 'GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n'],
  ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n'],
  ['unknown HTTP version', 'GET / HTTP/1.7\r\nHost: a\r\n\r\n'],
  ['HTTP/0.9', 'GET /\r\n\r\n'],
  ['absolute-form target', 'GET http://evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['invalid method', 'G@T / HTTP/1.1\r\nHost: a\r\n\r\n'],
];

describe('hostile clients', () => {
  it(`refuses a smuggling corpus of ${CORPUS.length} requests with 400 and no backend sees one`, async () => {
    const live = [...web.filter((b) => b.name !== 'b2'), hang, storm];
    const before = live.map((b) => b.hits);
    const answers = await Promise.all(CORPUS.map(async ([name, data]) => [name, await raw(dp.port, data)] as const));
    for (const [name, first] of answers) expect({ name, first }).toEqual({ name, first: 'HTTP/1.1 400 Bad Request' });
    // Give anything that slipped through time to arrive; then nothing did.
    await delay(300);
    expect(live.map((b) => b.hits)).toEqual(before);
  });

  it('serves normal clients while 2,000 slowloris connections trickle their headers', async () => {
    const sockets: Socket[] = [];
    await Promise.all(
      Array.from(
        { length: 2000 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(dp.port, '127.0.0.1', () => {
              s.write('GET / HTTP/1.1\r\nHost: a\r\n');
              resolve();
            });
            s.on('error', () => resolve());
            sockets.push(s);
          }),
      ),
    );
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write('X-Slow: 1\r\n');
    }, 500);
    try {
      const agent = new Agent();
      const latencies: number[] = [];
      for (let i = 0; i < 50; i++) {
        const t0 = Date.now();
        const res = await request(`${dp.url}/`, { dispatcher: agent });
        await res.body.dump();
        expect(res.statusCode).toBe(200);
        latencies.push(Date.now() - t0);
      }
      await agent.close();
      latencies.sort((a, b) => a - b);
      expect(latencies[Math.floor(latencies.length * 0.95)]).toBeLessThan(500);
      // The slow connections are still open: they were not simply refused.
      expect(sockets.filter((s) => !s.destroyed).length).toBeGreaterThan(1900);
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
  });
});
