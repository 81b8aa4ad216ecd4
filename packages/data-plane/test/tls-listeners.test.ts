import { randomBytes, X509Certificate } from 'node:crypto';
import { createServer } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config, ConfigSnapshot, TlsSecrets } from '@lb/shared';
import { testPki } from '../../../test/support/pki.js';
import { scanClientHello } from '../src/tls/client-hello.js';
import { type Backend, call, snapshot, startBackend, startTestNode, type TestNode } from './helpers.js';
import { freePort } from '../../../test/support/wait.js';

const pki = testPki();
const ecdsa = pki.issue({ cn: 'ec.example', sans: ['DNS:ec.example', 'DNS:shared.example'] });
const rsa = pki.issue({ cn: 'rsa.example', keyType: 'rsa', sans: ['DNS:rsa.example', 'DNS:shared.example'] });
const wild = pki.issue({ cn: 'wild', sans: ['DNS:*.wild.example'] });

let backend: Backend;
let t: TestNode;
let version = 100;

beforeAll(async () => {
  backend = await startBackend('b1', (req, res) => res.end(JSON.stringify({ headers: req.headers })));
  t = await startTestNode();
});

afterAll(async () => {
  await t.node.stop();
  await backend.close();
});

function secrets(keys: Record<string, string>, ticket?: Buffer): TlsSecrets {
  return {
    privateKeys: Object.entries(keys).map(([certificate, privateKeyPem]) => ({ certificate, privateKeyPem })),
    sessionTicketKeys: ticket ? [ticket] : [],
    unavailableReason: '',
  };
}

function config(port: number, certificates: string[] = ['ec', 'rsa', 'wild'], extra: Partial<Config> = {}): Config {
  return {
    pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b1', address: backend.address, weight: 1, state: 'active' }] } },
    routes: {
      secure: {
        match: {},
        listeners: ['https'],
        pools: [{ pool: 'web', weight: 1 }],
        hsts: { maxAgeSeconds: 600, includeSubDomains: true, preload: false },
        forwarded: true,
      },
      plain: { match: {}, listeners: ['default'], pools: [{ pool: 'web', weight: 1 }], httpsRedirect: { status: 301, port } },
    },
    certificates: { ec: { certificate: ecdsa.chain }, rsa: { certificate: rsa.chain }, wild: { certificate: wild.chain } },
    listeners: {
      https: { port, protocol: 'https', tls: { certificates, minVersion: 'TLSv1.2', alpn: ['http/1.1'], sessionResumption: true, sessionTimeoutSeconds: 300 } },
    },
    ...extra,
  };
}

async function push(cfg: Config, keys: TlsSecrets | null): Promise<{ ok: boolean; error?: string }> {
  const s: ConfigSnapshot = { ...snapshot(++version, cfg), secrets: keys };
  return t.node.applier.onConfig(s);
}

/** The certificate a handshake for `servername` gets (undefined: no SNI), with a TLS 1.3 client that prefers ECDSA. */
function handshake(port: number, servername: string | undefined, maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ...(servername ? { servername } : {}), maxVersion, ca: pki.root, checkServerIdentity: () => undefined },
      () => {
        resolve(socket.getPeerCertificate());
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

function httpsGet(
  port: number,
  servername: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca: pki.root }, () => {
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${servername}:${port}\r\nConnection: close\r\n${extra}\r\n`);
    });
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => {
      const [head, body] = text.split('\r\n\r\n');
      resolve({ status: Number(head!.split(' ')[1]), head: head!, body: body ?? '' });
    });
    socket.on('error', reject);
  });
}

describe('HTTPS listeners', () => {
  it('pick the certificate by SNI — exact, then wildcard, then the default — RSA beside ECDSA under TLS 1.3', async () => {
    const port = await freePort();
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }))).toEqual({ ok: true });
    expect((await handshake(port, 'rsa.example')).subject.CN).toBe('rsa.example');
    expect((await handshake(port, 'RSA.Example')).subject.CN).toBe('rsa.example');
    expect((await handshake(port, 'ec.example')).subject.CN).toBe('ec.example');
    expect((await handshake(port, 'a.wild.example')).subject.CN).toBe('wild');
    expect((await handshake(port, 'a.b.wild.example')).subject.CN).toBe('ec.example');
    expect((await handshake(port, undefined)).subject.CN).toBe('ec.example');
    expect((await handshake(port, 'unknown.example')).subject.CN).toBe('ec.example');
    // Both hold shared.example: OpenSSL picks what the client can verify.
    expect((await handshake(port, 'shared.example')).pubkey).toBeDefined();
    expect(t.node.applier.describe().listeners).toEqual([
      expect.objectContaining({
        name: 'https',
        protocol: 'https',
        certificates: expect.arrayContaining([expect.objectContaining({ name: 'rsa', names: ['rsa.example', 'shared.example'] })]),
      }),
    ]);
  });

  it('forward with X-Forwarded-Proto/-Port and Forwarded, add HSTS over HTTPS, and redirect plain HTTP', async () => {
    const port = await freePort();
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }))).toEqual({ ok: true });
    const res = await httpsGet(port, 'ec.example', '/x?y=1', { forwarded: 'for=192.0.2.1', 'x-forwarded-port': '1' });
    expect(res.status).toBe(200);
    expect(res.head.toLowerCase()).toContain('strict-transport-security: max-age=600; includesubdomains');
    const seen = JSON.parse(res.body).headers;
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-port']).toBe(String(port));
    expect(seen.forwarded).toBe(`for=192.0.2.1, for=127.0.0.1;proto=https;host="ec.example:${port}"`);
    const plain = await call(t.node.proxyUrl, '/a/b?c=d', { headers: { host: 'ec.example' } });
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://ec.example:${port}/a/b?c=d`);
    expect(plain.headers['strict-transport-security']).toBeUndefined();
  });

  it('NACK a push without the keys it needs, or with a port in use, and keep serving the one before', async () => {
    const port = await freePort();
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }))).toEqual({ ok: true });
    const running = t.node.applier.appliedVersion();
    const withheld: TlsSecrets = { privateKeys: [], sessionTicketKeys: [], unavailableReason: 'the control plane sends private keys only over mutual TLS' };
    const nack = await push(config(port), withheld);
    expect(nack).toEqual({
      ok: false,
      error: expect.stringMatching(/^DP_ERR_TLS_UNAVAILABLE: .*no private key for it: the control plane sends private keys only over mutual TLS/),
    });
    const wrong = await push(config(port), secrets({ ec: rsa.key, rsa: rsa.key, wild: wild.key }));
    expect(wrong).toEqual({ ok: false, error: 'DP_ERR_TLS_UNAVAILABLE: listener "https": the private key pushed for certificate "ec" does not match it' });
    expect(wrong.error).not.toContain('PRIVATE KEY');
    const taken = Number(new URL(t.node.proxyUrl).port);
    const busy = await push(config(taken), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }));
    expect(busy).toEqual({
      ok: false,
      error: expect.stringMatching(/^DP_ERR_LISTENER_BIND: listener "https" cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/),
    });
    expect(t.node.applier.appliedVersion()).toBe(running);
    expect((await handshake(port, 'rsa.example')).subject.CN).toBe('rsa.example');
  });

  it('rotate a certificate for new handshakes while an open connection keeps going', async () => {
    const port = await freePort();
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }))).toEqual({ ok: true });
    const socket = connect({ host: '127.0.0.1', port, servername: 'rsa.example', ca: pki.root, checkServerIdentity: () => undefined });
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('secureConnect', r));
    const replacement = pki.issue({ cn: 'rsa.example', keyType: 'rsa', sans: ['DNS:rsa.example'], usage: 'both' });
    const rotated = config(port);
    rotated.certificates!.rsa = { certificate: replacement.chain };
    expect(await push(rotated, secrets({ ec: ecdsa.key, rsa: replacement.key, wild: wild.key }))).toEqual({ ok: true });
    expect((await handshake(port, 'rsa.example')).fingerprint256).toBe(new X509Certificate(replacement.chain).fingerprint256);
    // The connection opened before the rotation still answers requests.
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    socket.write(`GET / HTTP/1.1\r\nHost: rsa.example\r\n\r\n`);
    expect(await answer).toMatch(/^HTTP\/1\.1 200/);
    socket.end();
  });

  it('serve one certificate without reading the ClientHello first, and read it once a second one comes', async () => {
    const port = await freePort();
    expect(await push(config(port, ['rsa']), secrets({ rsa: rsa.key }))).toEqual({ ok: true });
    expect((await handshake(port, 'rsa.example')).subject.CN).toBe('rsa.example');
    expect((await handshake(port, undefined)).subject.CN).toBe('rsa.example');
    expect((await httpsGet(port, 'rsa.example', '/')).status).toBe(200);
    expect(await push(config(port, ['rsa', 'ec']), secrets({ rsa: rsa.key, ec: ecdsa.key }))).toEqual({ ok: true });
    expect((await handshake(port, 'ec.example')).subject.CN).toBe('ec.example');
    expect((await handshake(port, undefined)).subject.CN).toBe('rsa.example');
  });

  it("hold clients to the listener's policy: oldest version, ciphers, ALPN", async () => {
    const port = await freePort();
    const strict = config(port, ['rsa']);
    strict.listeners!.https!.tls = { ...strict.listeners!.https!.tls!, minVersion: 'TLSv1.3' };
    expect(await push(strict, secrets({ rsa: rsa.key }))).toEqual({ ok: true });
    await expect(handshake(port, 'rsa.example', 'TLSv1.2')).rejects.toThrow(/alert|version|handshake/i);
    expect((await handshake(port, 'rsa.example')).subject.CN).toBe('rsa.example');
    const only = config(port, ['rsa']);
    only.listeners!.https!.tls = { ...only.listeners!.https!.tls!, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' };
    expect(await push(only, secrets({ rsa: rsa.key }))).toEqual({ ok: true });
    const cipher = await new Promise<string>((resolve, reject) => {
      const socket = connect(
        { host: '127.0.0.1', port, servername: 'rsa.example', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2', 'http/1.1'], ca: pki.root },
        () => {
          resolve(`${socket.getCipher().name} ${socket.alpnProtocol}`);
          socket.end();
        },
      );
      socket.on('error', reject);
    });
    expect(cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256 http/1.1');
  });

  it('closes a listener the config drops', async () => {
    const port = await freePort();
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }))).toEqual({ ok: true });
    const { listeners: _gone, ...rest } = config(port);
    rest.routes = { all: { match: {}, pools: [{ pool: 'web', weight: 1 }] } };
    expect(await push(rest, null)).toEqual({ ok: true });
    await expect(handshake(port, 'ec.example')).rejects.toThrow(/ECONNREFUSED/);
    expect(t.node.applier.describe().listeners).toEqual([]);
  });

  it('resume a session with a ticket issued under the shared key, also after the listener was rebuilt', async () => {
    const port = await freePort();
    const ticket = randomBytes(48);
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }, ticket))).toEqual({ ok: true });
    const first = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: 'ec.example', ca: pki.root, checkServerIdentity: () => undefined });
      s.once('session', (session: Buffer) => {
        resolve(session);
        s.end();
      });
      s.on('data', () => undefined);
      s.on('error', reject);
    });
    const resumed = (session: Buffer) =>
      new Promise<boolean>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, servername: 'ec.example', ca: pki.root, session, checkServerIdentity: () => undefined }, () => {
          resolve(s.isSessionReused());
          s.end();
        });
        s.on('error', reject);
      });
    expect(await resumed(first)).toBe(true);
    // A new push (other pool settings) recompiles: the same ticket key still opens the ticket.
    const changed = config(port);
    changed.pools.web!.backends[0]!.weight = 2;
    expect(await push(changed, secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }, ticket))).toEqual({ ok: true });
    expect(await resumed(first)).toBe(true);
    // Another ticket key does not.
    expect(await push(config(port), secrets({ ec: ecdsa.key, rsa: rsa.key, wild: wild.key }, randomBytes(48)))).toEqual({ ok: true });
    expect(await resumed(first)).toBe(false);
  });
});

describe('scanClientHello', () => {
  it('asks for more until the record is whole, and reads the name', async () => {
    const hello = await captureClientHello('Some.Example');
    for (let cut = 0; cut < hello.length; cut += 37) expect(scanClientHello(hello.subarray(0, cut)).state).toBe('more');
    expect(scanClientHello(hello)).toEqual({ state: 'done', servername: 'some.example' });
    expect(scanClientHello(await captureClientHello(undefined))).toEqual({ state: 'done', servername: undefined });
  });

  it('gives up on what is not a ClientHello, without reading past the bytes it has', () => {
    expect(scanClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toEqual({ state: 'done', servername: undefined });
    expect(scanClientHello(Buffer.from([22, 3, 1, 0, 4, 1, 0, 0, 0]))).toEqual({ state: 'done', servername: undefined });
    expect(scanClientHello(Buffer.from([22, 3, 1, 0, 0]))).toEqual({ state: 'done', servername: undefined });
    for (let i = 0; i < 2000; i++) {
      const noise = randomBytes(1 + (i % 300));
      noise[0] = 22;
      noise[1] = 3;
      const scan = scanClientHello(noise);
      expect(['more', 'done']).toContain(scan.state);
    }
  });
});

/** The first bytes a node TLS client sends for `servername`. */
function captureClientHello(servername: string | undefined): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.once('data', (data: Buffer) => {
        resolve(data);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      const client = connect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
      client.on('error', () => undefined);
    });
  });
}
