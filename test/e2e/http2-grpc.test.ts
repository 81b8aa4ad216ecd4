// Issue 12, points 1–3 end to end: real etcd, a control plane and a data-plane process over mutual
// TLS; HTTP/2 from real clients (curl --http2 over TLS, curl --http2-prior-knowledge, h2load) to
// HTTP/1.1 backends, and @grpc/grpc-js clients through h2c pools to three real @grpc/grpc-js
// servers: every kind of call, trailers and statuses unchanged, each call balanced on its own,
// gRPC-shaped local errors, grpc-timeout and the route's timeout, retries of calls that never
// reached a backend, a backend connection that went silent found by the data plane's PING, and
// GOAWAY on SIGTERM with the stream in flight finishing.
import http2 from 'node:http2';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPki } from '../support/pki.js';
import { type SilenceableRelay, silenceableRelay } from '../support/silenceable-relay.js';
import type { Stack } from '../support/stack.js';
import { curl, run } from '../support/tls-clients.js';
import { startTlsStack } from '../support/tls-stack.js';
import { freePort, waitFor } from '../support/wait.js';

const pki = testPki();
const site = pki.issue({ cn: 'h2.example', sans: ['DNS:h2.example'] });
let stack: Stack;
let h2cPort: number;
let tlsPort: number;
let caFile: string;
let silentPath: SilenceableRelay;

// A JSON-coded service, so that no .proto file is needed: grpc-js takes any serializer.
const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as Record<string, unknown>,
};
function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<unknown, Record<string, unknown>> {
  return {
    path: `/demo.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}
const service: grpc.ServiceDefinition = {
  Unary: method('Unary', false, false),
  Fail: method('Fail', false, false),
  Slow: method('Slow', false, false),
  List: method('List', false, true),
  Sum: method('Sum', true, false),
  Chat: method('Chat', true, true),
};
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Client = InstanceType<typeof EchoClient> & Record<string, (...args: unknown[]) => unknown>;

interface GrpcBackend {
  readonly name: string;
  readonly server: grpc.Server;
  address: string;
  calls: number;
}

async function startGrpcBackend(name: string): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const backend: GrpcBackend = { name, server, address: '', calls: 0 };
  server.addService(service, {
    Unary: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      backend.calls++;
      const trailer = new grpc.Metadata();
      trailer.set('x-served-by', name);
      cb(null, { echo: call.request.text, by: name, meta: call.metadata.get('x-client')[0] ?? null }, trailer);
    },
    Fail: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-why', 'on purpose');
      cb({ code: grpc.status.FAILED_PRECONDITION, details: 'no: precondition ünmet', metadata: trailer });
    },
    Slow: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      setTimeout(() => cb(null, { late: true }), 1500);
    },
    List: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      const n = Number(call.request.n);
      for (let i = 0; i < n; i++) call.write({ i, by: name });
      call.end();
    },
    Sum: (call: grpc.ServerReadableStream<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      let sum = 0;
      call.on('data', (m: Record<string, unknown>) => (sum += Number(m.n)));
      call.on('end', () => cb(null, { sum }));
    },
    Chat: (call: grpc.ServerDuplexStream<Record<string, unknown>, unknown>) => {
      call.on('data', (m: Record<string, unknown>) => call.write({ reply: `re: ${m.text}` }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return Object.assign(backend, { address: `127.0.0.1:${port}` });
}

const backends: GrpcBackend[] = [];

beforeAll(async () => {
  stack = await startTlsStack({
    dataPlanes: 1,
    backends: 1,
    nodeArgs: () => ['--drain-timeout-ms', '3000', '--upstream-http2-ping-interval-ms', '1000'],
  });
  for (const name of ['g1', 'g2', 'g3']) {
    backends.push(await startGrpcBackend(name));
  }
  silentPath = await silenceableRelay(backends[0]!.address);
  h2cPort = await freePort();
  tlsPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lb-h2-'));
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, pki.root);
  await stack.write('PUT', '/v1/certificates/site', { certificate: site.chain, privateKey: site.key });
  await stack.write('PUT', '/v1/pools/web', { backends: [{ id: 'b1', address: stack.backends[0]!.address }] });
  await stack.write('PUT', '/v1/pools/grpc', { protocol: 'h2c', backends: backends.map((b) => ({ id: b.name, address: b.address })) });
  // A dead backend beside a live one: every call that meets the dead one is retried on the other.
  await stack.write('PUT', '/v1/pools/flaky', {
    protocol: 'h2c',
    backends: [
      { id: 'dead', address: '127.0.0.1:9' },
      { id: 'live', address: backends[0]!.address },
    ],
  });
  await stack.write('PUT', '/v1/pools/nobody', { protocol: 'h2c', backends: [] });
  await stack.write('PUT', '/v1/pools/silent', { protocol: 'h2c', backends: [{ id: 'via-relay', address: silentPath.address }] });
  await stack.write('PUT', '/v1/routes/web', { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] });
  await stack.write('PUT', '/v1/routes/grpc', { match: { pathPrefix: '/demo.Echo/' }, pools: [{ pool: 'grpc' }], timeouts: { requestMs: 1000 } });
  await stack.write('PUT', '/v1/routes/flaky', {
    match: { pathPrefix: '/demo.Echo/', headers: [{ name: 'x-pool', exact: 'flaky' }] },
    pools: [{ pool: 'flaky' }],
  });
  await stack.write('PUT', '/v1/routes/nobody', {
    match: { pathPrefix: '/demo.Echo/', headers: [{ name: 'x-pool', exact: 'nobody' }] },
    pools: [{ pool: 'nobody' }],
  });
  await stack.write('PUT', '/v1/routes/silent', {
    match: { pathPrefix: '/demo.Echo/', headers: [{ name: 'x-pool', exact: 'silent' }] },
    pools: [{ pool: 'silent' }],
  });
  await stack.write('PUT', '/v1/listeners/h2c', { port: h2cPort, protocol: 'http', h2c: true });
  await stack.write('PUT', '/v1/listeners/h2', { port: tlsPort, protocol: 'https', tls: { certificates: ['site'], alpn: ['h2', 'http/1.1'] } });
});

afterAll(async () => {
  await stack?.stop();
  await silentPath?.close();
  for (const b of backends) b.server.forceShutdown();
});

function client(): Client {
  return new EchoClient(`127.0.0.1:${h2cPort}`, grpc.credentials.createInsecure()) as Client;
}

function unary(c: Client, name: string, request: unknown, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}) {
  return new Promise<{ err: grpc.ServiceError | null; value: Record<string, unknown> | undefined; trailers: grpc.Metadata | undefined }>((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = c[name]!(request, metadata, options, (err: grpc.ServiceError | null, value: Record<string, unknown>) => {
      // 'status' comes after the callback on success; give it a tick.
      setImmediate(() => resolve({ err, value, trailers }));
    }) as grpc.ClientUnaryCall;
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

describe('HTTP/2 from clients (issue 12, point 1)', () => {
  it('curl --http2 over TLS (ALPN h2) and --http2-prior-knowledge (h2c) reach HTTP/1.1 backends', async () => {
    const tls = await curl(['--http2', '--cacert', caFile, '--resolve', `h2.example:${tlsPort}:127.0.0.1`, `https://h2.example:${tlsPort}/echo`]);
    expect(tls.status).toBe(200);
    expect(tls.headers).toMatch(/^HTTP\/2 200/);
    const seen = JSON.parse(tls.body) as { headers: Record<string, string> };
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-request-id']).toMatch(/.+/);
    const h2c = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${h2cPort}/echo`, '-d', 'hello']);
    expect(h2c.status).toBe(200);
    expect(h2c.headers).toMatch(/^HTTP\/2 200/);
    expect((JSON.parse(h2c.body) as { body: string }).body).toBe('hello');
    // HTTP/1.1 keeps working on the same ports.
    const h1 = await curl(['--http1.1', `http://127.0.0.1:${h2cPort}/echo`]);
    expect(h1.headers).toMatch(/^HTTP\/1.1 200/);
  });

  it('h2load: 400 requests on 4 connections, 10 streams each, all answered 2xx', async () => {
    const ran = await run('h2load', ['-n', '400', '-c', '4', '-m', '10', `http://127.0.0.1:${h2cPort}/`], '', 30_000);
    expect(ran.stdout).toMatch(/requests: 400 total, 400 started, 400 done, 400 succeeded/);
    expect(ran.stdout).toMatch(/status codes: 400 2xx/);
  });
});

describe('gRPC end to end (issue 12, points 2 and 3)', () => {
  it('unary, server-streaming, client-streaming and bidirectional calls, metadata and trailers unchanged', async () => {
    const c = client();
    try {
      const md = new grpc.Metadata();
      md.set('x-client', 'test');
      const one = await unary(c, 'Unary', { text: 'hi' }, md);
      expect(one.err).toBeNull();
      expect(one.value).toMatchObject({ echo: 'hi', meta: 'test' });
      expect(one.trailers?.get('x-served-by')[0]).toMatch(/^g[123]$/);

      const listed: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = c.List!({ n: 50 }) as grpc.ClientReadableStream<unknown>;
        s.on('data', (m) => listed.push(m));
        s.on('end', resolve);
        s.on('error', reject);
      });
      expect(listed).toHaveLength(50);

      const sum = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const s = c.Sum!((err: Error | null, v: Record<string, unknown>) => (err ? reject(err) : resolve(v))) as grpc.ClientWritableStream<unknown>;
        for (let i = 1; i <= 100; i++) s.write({ n: i });
        s.end();
      });
      expect(sum).toEqual({ sum: 5050 });

      const replies: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = c.Chat!() as grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
        s.on('data', (m: Record<string, unknown>) => {
          replies.push(String(m.reply));
          if (replies.length < 5) s.write({ text: `m${replies.length}` });
          else s.end();
        });
        s.on('end', resolve);
        s.on('error', reject);
        s.write({ text: 'm0' });
      });
      expect(replies).toEqual(['re: m0', 're: m1', 're: m2', 're: m3', 're: m4']);

      const failed = await unary(c, 'Fail', {});
      expect(failed.err?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(failed.err?.details).toBe('no: precondition ünmet');
      expect(failed.err?.metadata.get('x-why')[0]).toBe('on purpose');
    } finally {
      c.close();
    }
  });

  it('balances each call on its own: 1,000 calls on one client connection spread evenly over three backends', async () => {
    const c = client();
    try {
      const counts = new Map<string, number>();
      for (let batch = 0; batch < 10; batch++) {
        const results = await Promise.all(Array.from({ length: 100 }, () => unary(c, 'Unary', { text: 'x' })));
        for (const r of results) {
          expect(r.err).toBeNull();
          const by = String(r.value!.by);
          counts.set(by, (counts.get(by) ?? 0) + 1);
        }
      }
      // round_robin: a third each, give or take the in-flight ordering.
      expect([...counts.keys()].sort()).toEqual(['g1', 'g2', 'g3']);
      for (const n of counts.values()) expect(Math.abs(n - 1000 / 3)).toBeLessThan(5);
    } finally {
      c.close();
    }
  });

  it('answers what it cannot forward as gRPC errors: 14 without a backend, 4 past the route timeout or grpc-timeout', async () => {
    const c = client();
    try {
      const md = new grpc.Metadata();
      md.set('x-pool', 'nobody');
      const none = await unary(c, 'Unary', {}, md);
      expect(none.err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(none.err?.metadata.get('x-lb-error')[0]).toBe('no_backend');
      // The route allows 1 s; the backend takes 1.5 s.
      const slow = await unary(c, 'Slow', {});
      expect(slow.err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(slow.err?.metadata.get('x-lb-error')[0]).toBe('upstream_timeout');
    } finally {
      c.close();
    }
    // grpc-timeout shorter than the route's: the proxy answers 4 at the call's deadline, not at 1 s.
    const session = http2.connect(`http://127.0.0.1:${h2cPort}`);
    try {
      const started = performance.now();
      const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const s = session.request({
          ':method': 'POST',
          ':path': '/demo.Echo/Slow',
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': '200m',
        });
        s.on('response', resolve);
        s.on('error', reject);
        s.end(Buffer.from([0, 0, 0, 0, 2, 123, 125]));
      });
      expect(head['grpc-status']).toBe('4');
      expect(performance.now() - started).toBeLessThan(900);
    } finally {
      session.close();
    }
  });

  it('retries calls that never reached a backend: a dead backend in the pool costs no call', async () => {
    const c = client();
    try {
      const md = new grpc.Metadata();
      md.set('x-pool', 'flaky');
      const results = await Promise.all(Array.from({ length: 20 }, () => unary(c, 'Unary', { text: 'r' }, md)));
      for (const r of results) expect(r.err).toBeNull();
      for (const r of results) expect(r.value!.by).toBe('g1');
    } finally {
      c.close();
    }
  });

  it('finds a backend connection that went silent by a PING (--upstream-http2-ping-interval-ms 1000): its call fails in seconds, the next gets a new connection', async () => {
    const c = client();
    try {
      const md = new grpc.Metadata();
      md.set('x-pool', 'silent');
      expect((await unary(c, 'Unary', { text: 'before' }, md)).err).toBeNull();
      expect(silentPath.accepted).toBe(1);
      silentPath.goSilent();
      // The call goes out on the silent connection. Its deadline is 30 s away; the PING goes out
      // after 1 s of silence, and the connection is given up 1 s later without an answer.
      const started = Date.now();
      const lost = await unary(c, 'Unary', { text: 'lost' }, md, { deadline: Date.now() + 30_000 });
      expect(lost.err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(Date.now() - started).toBeLessThan(5_000);
      const next = await unary(c, 'Unary', { text: 'after' }, md);
      expect(next.err).toBeNull();
      expect(next.value).toMatchObject({ echo: 'after', by: 'g1' });
      expect(silentPath.accepted).toBe(2);
    } finally {
      c.close();
    }
  });
});

describe('draining HTTP/2 (issue 12, point 1)', () => {
  it('SIGTERM sends GOAWAY; the stream in flight finishes', async () => {
    const session = http2.connect(`http://127.0.0.1:${h2cPort}`);
    session.on('error', () => {});
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': '/slow?ms=800' });
      let status = 0;
      let body = '';
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
    });
    // The request must be at the backend before the signal.
    await waitFor(() => stack.backends[0]!.active > 0, { message: 'the slow request at the backend' });
    const dp = stack.dps[0]!;
    dp.process.process.kill('SIGTERM');
    await goaway;
    const answered = await reply;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatch(/slow 800/);
    expect(await dp.process.exited).toBe(0);
    session.destroy();
  });
});
