// HTTP/2 on both sides of the proxy, in process: h2c with prior knowledge on a plain listener,
// h2 by ALPN on an HTTPS one, HTTP/2 (h2c) backends with trailers, gRPC-shaped local replies and
// grpc-timeout. Real processes and real clients (curl, h2load, @grpc/grpc-js) are test/e2e's.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config, ConfigSnapshot, TlsSecrets } from '@lb/shared';
import { testPki } from '../../../test/support/pki.js';
import { type Backend, snapshot, startBackend, startTestNode, type TestNode, waitFor } from './helpers.js';
import { freePort } from '../../../test/support/wait.js';

const pki = testPki();
const site = pki.issue({ cn: 'h2.example', sans: ['DNS:h2.example'] });
const backendCert = pki.issue({ cn: 'backend.example', sans: ['DNS:backend.example'] });

let narrowBackend: http2.Http2Server;
let narrowAddress = '';
/** Connections the narrow backend was opened, and the most streams it saw at once on one. */
let narrowSessions = 0;
let narrowPeak = 0;
/** Answers one stream per connection, then says GOAWAY. */
let onceBackend: http2.Http2Server;
let onceAddress = '';
let onceSessions = 0;
let tlsBackend: http2.Http2SecureServer;
let tlsAddress = '';
let tlsBackendAlpn = '';

let backend: Backend;
let h2Backend: http2.Http2Server;
let h2Address = '';
let t: TestNode;
let version = 100;
let plainPort = 0;
let tlsPort = 0;

beforeAll(async () => {
  backend = await startBackend('h1', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () =>
      res.end(JSON.stringify({ backend: 'h1', method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() })),
    );
  });
  // An HTTP/2 backend that answers with trailers, or slowly (/slow), like a gRPC server does.
  h2Backend = http2.createServer();
  h2Backend.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (headers[':path'] === '/svc.Big/Get') {
        // 4 MiB in 64 KiB writes, past every flow-control window on the way.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        let left = 64;
        const pump = (): void => {
          while (left > 0) {
            left--;
            if (!stream.write(Buffer.alloc(65_536, 120))) return void stream.once('drain', pump);
          }
          stream.end();
        };
        pump();
        return;
      }
      if (headers[':path'] === '/svc.Slow/Call') {
        setTimeout(() => {
          if (!stream.destroyed) stream.respond({ ':status': 200 }, { endStream: true });
        }, 2000);
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-seen-te': String(headers.te) }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok', 'x-body': Buffer.concat(chunks).toString() }));
      stream.end(Buffer.from('reply'));
    });
  });
  await new Promise<void>((r) => h2Backend.listen(0, '127.0.0.1', r));
  h2Address = `127.0.0.1:${(h2Backend.address() as { port: number }).port}`;
  // An HTTP/2 backend over TLS (pool protocol http2): says which protocol it was spoken to with.
  tlsBackend = http2.createSecureServer({ cert: backendCert.chain, key: backendCert.key });
  tlsBackend.on('stream', (stream) => {
    tlsBackendAlpn = String((stream.session?.socket as unknown as { alpnProtocol?: string } | undefined)?.alpnProtocol);
    stream.respond({ ':status': 200, 'x-backend': 'tls-h2' });
    stream.end('over tls');
  });
  await new Promise<void>((r) => tlsBackend.listen(0, '127.0.0.1', r));
  tlsAddress = `127.0.0.1:${(tlsBackend.address() as { port: number }).port}`;
  // Holds each request 200 ms: how requests spread over connections shows.
  narrowBackend = http2.createServer();
  narrowBackend.on('session', (session) => {
    narrowSessions++;
    let open = 0;
    session.on('stream', (stream) => {
      open++;
      narrowPeak = Math.max(narrowPeak, open);
      stream.on('close', () => open--);
      stream.resume();
      setTimeout(() => {
        if (!stream.destroyed) stream.respond({ ':status': 200 }, { endStream: true });
      }, 200);
    });
  });
  await new Promise<void>((r) => narrowBackend.listen(0, '127.0.0.1', r));
  narrowAddress = `127.0.0.1:${(narrowBackend.address() as { port: number }).port}`;
  onceBackend = http2.createServer();
  onceBackend.on('session', (session) => {
    onceSessions++;
    session.once('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end(`session ${onceSessions}`);
      session.close();
    });
  });
  await new Promise<void>((r) => onceBackend.listen(0, '127.0.0.1', r));
  onceAddress = `127.0.0.1:${(onceBackend.address() as { port: number }).port}`;
  t = await startTestNode();
  plainPort = await freePort();
  tlsPort = await freePort();
  const outcome = await push(config());
  expect(outcome).toEqual({ ok: true });
});

afterAll(async () => {
  await t.node.stop();
  await backend.close();
  await new Promise<void>((r) => h2Backend.close(() => r()));
  await new Promise<void>((r) => tlsBackend.close(() => r()));
  await new Promise<void>((r) => narrowBackend.close(() => r()));
  await new Promise<void>((r) => onceBackend.close(() => r()));
});

function config(extra: Partial<Config> = {}): Config {
  return {
    pools: {
      web: { algorithm: 'round_robin', backends: [{ id: 'b1', address: backend.address, weight: 1, state: 'active' }] },
      grpc: { algorithm: 'round_robin', protocol: 'h2c', backends: [{ id: 'g1', address: h2Address, weight: 1, state: 'active' }] },
      empty: { algorithm: 'round_robin', backends: [] },
      sticky: {
        algorithm: 'round_robin',
        sticky: { cookie: 'pin', ttlSeconds: 0, secure: false, httpOnly: true, sameSite: 'Lax' },
        backends: [{ id: 's1', address: backend.address, weight: 1, state: 'active' }],
      },
      once: { algorithm: 'round_robin', protocol: 'h2c', backends: [{ id: 'o1', address: onceAddress, weight: 1, state: 'active' }] },
      narrow: {
        algorithm: 'round_robin',
        protocol: 'h2c',
        maxStreamsPerConnection: 2,
        backends: [{ id: 'n1', address: narrowAddress, weight: 1, state: 'active' }],
      },
      secure: {
        algorithm: 'round_robin',
        protocol: 'http2',
        tls: { serverName: 'backend.example', verify: true, caCertificate: 'ca' },
        backends: [{ id: 't1', address: tlsAddress, weight: 1, state: 'active' }],
      },
    },
    routes: {
      web: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] },
      grpc: { match: { pathPrefix: '/svc.' }, pools: [{ pool: 'grpc', weight: 1 }] },
      none: { match: { pathPrefix: '/none.' }, pools: [{ pool: 'empty', weight: 1 }] },
      sticky: { match: { pathPrefix: '/sticky' }, pools: [{ pool: 'sticky', weight: 1 }] },
      limited: { match: { pathPrefix: '/limited' }, pools: [{ pool: 'web', weight: 1 }], rateLimit: { requestsPerSecond: 1, burst: 2, key: 'ip' } },
      secure: { match: { pathPrefix: '/secure' }, pools: [{ pool: 'secure', weight: 1 }] },
      narrow: { match: { pathPrefix: '/narrow' }, pools: [{ pool: 'narrow', weight: 1 }] },
      once: { match: { pathPrefix: '/once' }, pools: [{ pool: 'once', weight: 1 }] },
    },
    certificates: { site: { certificate: site.chain }, ca: { certificate: pki.root } },
    listeners: {
      plain: { port: plainPort, protocol: 'http', h2c: true },
      secure: {
        port: tlsPort,
        protocol: 'https',
        tls: { certificates: ['site'], minVersion: 'TLSv1.2', alpn: ['h2', 'http/1.1'], sessionResumption: true, sessionTimeoutSeconds: 300 },
      },
    },
    ...extra,
  } as Config;
}

function push(cfg: Config): Promise<{ ok: boolean; error?: string }> | { ok: boolean; error?: string } {
  const keys: TlsSecrets = { privateKeys: [{ certificate: 'site', privateKeyPem: site.key }], sessionTicketKeys: [], unavailableReason: '' };
  const s: ConfigSnapshot = { ...snapshot(++version, cfg), secrets: keys };
  return t.node.applier.onConfig(s);
}

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: string;
}

function request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let text = '';
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (h) => (trailers = h));
    stream.on('data', (d: Buffer) => (text += d.toString()));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, trailers, body: text }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

describe('HTTP/2 from clients', () => {
  it('h2c with prior knowledge reaches an HTTP/1.1 backend, with X-Request-Id and a body framed for it', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const get = await request(session, { ':path': '/hello?x=1', cookie: 'a=1' });
      expect(get.status).toBe(200);
      const seen = JSON.parse(get.body);
      expect(seen.url).toBe('/hello?x=1');
      expect(seen.headers.host).toBe(`127.0.0.1:${plainPort}`);
      expect(seen.headers['x-request-id']).toMatch(/.+/);
      const post = await request(session, { ':path': '/up', ':method': 'POST' }, 'payload');
      const sent = JSON.parse(post.body);
      expect(sent.body).toBe('payload');
      expect(sent.headers['transfer-encoding']).toBe('chunked');
    } finally {
      session.close();
    }
  });

  it('HTTP/1.1 still works on the h2c listener', async () => {
    const res = await fetch(`http://127.0.0.1:${plainPort}/plain`);
    expect(res.status).toBe(200);
    expect(JSON.parse(await res.text()).url).toBe('/plain');
  });

  it('h2 by ALPN on an HTTPS listener', async () => {
    const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { ca: pki.root, servername: 'h2.example' });
    try {
      const res = await request(session, { ':path': '/tls' });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).headers['x-forwarded-proto']).toBe('https');
      expect((session.socket as unknown as { alpnProtocol: string }).alpnProtocol).toBe('h2');
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 to backends', () => {
  it('passes trailers through and sends te: trailers to a gRPC backend', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const res = await request(session, { ':path': '/svc.Echo/Call', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' }, 'ping');
      expect(res.status).toBe(200);
      expect(res.body).toBe('reply');
      expect(res.headers['x-seen-te']).toBe('trailers');
      expect(res.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'ok', 'x-body': 'ping' });
    } finally {
      session.close();
    }
  });

  it('answers gRPC calls it cannot forward with gRPC statuses: 14 without a backend, 4 past grpc-timeout', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const none = await request(session, { ':path': '/none.Svc/Call', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' }, '');
      expect(none.status).toBe(200);
      expect(none.headers['grpc-status']).toBe('14');
      expect(none.headers['x-lb-error']).toBe('no_backend');
      const started = performance.now();
      const late = await request(
        session,
        { ':path': '/svc.Slow/Call', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' },
        '',
      );
      expect(late.headers['grpc-status']).toBe('4');
      expect(performance.now() - started).toBeLessThan(1500);
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 backend connections', () => {
  it('multiplex up to maxStreamsPerConnection streams each: 6 requests at once take 3 connections', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const replies = await Promise.all(Array.from({ length: 6 }, () => request(session, { ':path': '/narrow' })));
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(narrowPeak).toBe(2);
      expect(narrowSessions).toBe(3);
      // Kept for the next requests: no new connection.
      await request(session, { ':path': '/narrow' });
      expect(narrowSessions).toBe(3);
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 backend GOAWAY', () => {
  it('a connection the backend sends GOAWAY on takes no new stream: the next request gets a new connection', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const bodies: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(session, { ':path': '/once' });
        expect(res.status).toBe(200);
        bodies.push(res.body);
      }
      expect(bodies).toEqual(['session 1', 'session 2', 'session 3']);
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 and the request path', () => {
  it('sticky cookies and rate limits hold for HTTP/2 requests as for HTTP/1.1 ones', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const pinned = await request(session, { ':path': '/sticky' });
      expect(String(pinned.headers['set-cookie'])).toMatch(/^pin=/);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await request(session, { ':path': '/limited' })).status);
      expect(statuses.slice(0, 2)).toEqual([200, 200]);
      expect(statuses.slice(2)).toEqual([429, 429]);
    } finally {
      session.close();
    }
  });

  it('an http2 pool speaks HTTP/2 over TLS (ALPN h2) to its backend, certificate verified', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const res = await request(session, { ':path': '/secure' });
      expect(res.status).toBe(200);
      expect(res.headers['x-backend']).toBe('tls-h2');
      expect(res.body).toBe('over tls');
      expect(tlsBackendAlpn).toBe('h2');
    } finally {
      session.close();
    }
    // HTTP/1.1 clients reach it too.
    const h1 = await fetch(`http://127.0.0.1:${plainPort}/secure`);
    expect(await h1.text()).toBe('over tls');
  });
});

describe('HTTP/2 bodies', () => {
  it('streams large bodies both ways: 3 MiB up to an HTTP/1.1 backend, 4 MiB down from an h2c one, trailers after', async () => {
    const session = http2.connect(`http://127.0.0.1:${plainPort}`);
    try {
      const up = Buffer.alloc(3 * 1024 * 1024, 97).toString();
      const sent = await request(session, { ':path': '/upload', ':method': 'POST' }, up);
      expect((JSON.parse(sent.body) as { body: string }).body.length).toBe(up.length);
      const down = await request(session, { ':path': '/svc.Big/Get', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' }, '');
      expect(down.body.length).toBe(4 * 1024 * 1024);
      expect(down.trailers?.['grpc-status']).toBe('0');
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 in the access log', () => {
  it('writes one line per HTTP/2 request, with protocol HTTP/2, its route and backend', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lb-h2-log-')), 'access.log');
    const logged = await startTestNode({ proxy: { accessLog: file } });
    const port = await freePort();
    try {
      const config = {
        pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b1', address: backend.address, weight: 1, state: 'active' }] } },
        routes: { web: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } },
        listeners: { plain: { port, protocol: 'http', h2c: true } },
      };
      expect(await logged.node.applier.onConfig(snapshot(1, config))).toEqual({ ok: true });
      const session = http2.connect(`http://127.0.0.1:${port}`);
      try {
        expect((await request(session, { ':path': '/logged?x=1' })).status).toBe(200);
      } finally {
        session.close();
      }
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('/logged'), 5000, 'the access log line');
      const line = JSON.parse(
        readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .find((l) => l.includes('/logged'))!,
      ) as Record<string, unknown>;
      expect(line).toMatchObject({ protocol: 'HTTP/2', method: 'GET', url: '/logged?x=1', status: 200, route: 'web', backend: 'b1', completed: true });
      expect(line.host).toBe(`127.0.0.1:${port}`);
    } finally {
      await logged.node.stop();
    }
  });
});
