import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config, TlsSecrets } from '@lb/shared';
import { testPki } from '../../../test/support/pki.js';
import type { UpstreamClient } from '../src/upstream/upstream-pools.js';
import { call, snapshot, startTestNode, type TestNode } from './helpers.js';

const pki = testPki();
const backendCert = pki.issue({ cn: 'backend.internal', sans: ['DNS:backend.internal', 'IP:127.0.0.1'] });
const client = pki.issue({ cn: 'lb-client', usage: 'client' });

let plain: Server;
let mutual: Server;
let plainAddress: string;
let mutualAddress: string;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const answer = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.end(`over ${(req.socket as TLSSocket).getProtocol()} as ${peer?.subject?.CN ?? 'nobody'}`);
  };
  plain = createServer({ cert: backendCert.chain, key: backendCert.key }, answer);
  mutual = createServer({ cert: backendCert.chain, key: backendCert.key, ca: pki.root, requestCert: true, rejectUnauthorized: true }, answer);
  plainAddress = await listen(plain);
  mutualAddress = await listen(mutual);
});

afterAll(async () => {
  for (const s of [plain, mutual]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

function configWith(address: string, tls: Record<string, unknown>, certificates: Record<string, string>): Config {
  return {
    pools: {
      web: {
        algorithm: 'round_robin',
        backends: [{ id: 'b1', address, weight: 1, state: 'active' }],
        tls: { verify: true, ...tls },
        retry: { attempts: 1, on: [], backoffMs: 0, maxBackoffMs: 0, budgetPercent: 20, minRetriesPerSecond: 3 },
      },
    },
    routes: { all: { match: {}, pools: [{ pool: 'web', weight: 1 }] } },
    certificates: Object.fromEntries(Object.entries(certificates).map(([name, certificate]) => [name, { certificate }])),
  } as Config;
}

const keys = (entries: Record<string, string>): TlsSecrets => ({
  privateKeys: Object.entries(entries).map(([certificate, privateKeyPem]) => ({ certificate, privateKeyPem })),
  sessionTicketKeys: [],
  unavailableReason: '',
});

describe.each<UpstreamClient>(['native', 'undici'])('TLS to backends (%s client)', (kind) => {
  let t: TestNode;
  let version = 0;
  beforeAll(async () => {
    t = await startTestNode({ upstream: { client: kind } });
  });
  afterAll(async () => {
    await t.node.stop();
  });

  async function push(config: Config, secrets: TlsSecrets | null = null) {
    return t.node.applier.onConfig({ ...snapshot(++version, config), secrets });
  }

  it('verifies the backend against the CA resource and refuses one that does not verify', async () => {
    expect(await push(configWith(plainAddress, { caCertificate: 'ca' }, { ca: pki.root }))).toEqual({ ok: true });
    for (let i = 0; i < 3; i++) {
      const res = await call(t.node.proxyUrl, '/');
      expect(res.status).toBe(200);
      expect(res.body.toString()).toMatch(/^over TLSv1\.3 as nobody/);
    }
    // Another CA: the handshake fails, 502 upstream_tls, counted as kind tls.
    expect(await push(configWith(plainAddress, { caCertificate: 'ca' }, { ca: pki.issue({ cn: 'x', otherCa: true }).ca }))).toEqual({ ok: true });
    const refused = await call(t.node.proxyUrl, '/');
    expect(refused.status).toBe(502);
    expect(refused.headers['x-lb-error']).toBe('upstream_tls');
    expect(await t.node.metrics.registry.metrics()).toMatch(/lb_dp_upstream_errors_total\{pool="web",kind="tls"\} [1-9]/);
    // A name the certificate does not hold fails too; verify: false only encrypts.
    expect(await push(configWith(plainAddress, { caCertificate: 'ca', serverName: 'other.internal' }, { ca: pki.root }))).toEqual({ ok: true });
    expect((await call(t.node.proxyUrl, '/')).status).toBe(502);
    expect(await push(configWith(plainAddress, { verify: false }, {}))).toEqual({ ok: true });
    expect((await call(t.node.proxyUrl, '/')).status).toBe(200);
  });

  it('presents the client certificate to a backend that asks for one', async () => {
    const config = configWith(mutualAddress, { caCertificate: 'ca', clientCertificate: 'lb' }, { ca: pki.root, lb: client.chain });
    expect(await push(config, keys({ lb: client.key }))).toEqual({ ok: true });
    const res = await call(t.node.proxyUrl, '/');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toMatch(/as lb-client$/);
    // Without the key in the push: NACK, and the running config stays.
    const nack = await push({ ...config, pools: { ...config.pools } }, { privateKeys: [], sessionTicketKeys: [], unavailableReason: 'withheld for the test' });
    expect(nack).toEqual({
      ok: false,
      error: 'DP_ERR_TLS_UNAVAILABLE: pool "web" presents certificate "lb" but this push carries no private key for it: withheld for the test',
    });
    // Without a client certificate the backend refuses the handshake.
    expect(await push(configWith(mutualAddress, { caCertificate: 'ca' }, { ca: pki.root }))).toEqual({ ok: true });
    expect((await call(t.node.proxyUrl, '/')).status).toBe(502);
  });
});

describe('an http2 pool whose TLS backend does not speak HTTP/2', () => {
  it('fails each request with 502 upstream_tls (ALPN refused in the handshake), then serves once the pool speaks HTTP/1.1', async () => {
    const t = await startTestNode();
    try {
      let version = 0;
      const push = (config: Config) => t.node.applier.onConfig({ ...snapshot(++version, config), secrets: null });
      const h2 = (config: Config): Config => ({ ...config, pools: { web: { ...config.pools.web!, protocol: 'http2' } } }) as Config;
      // `plain` offers ALPN http/1.1 only: the handshake fails with no_application_protocol.
      expect(await push(h2(configWith(plainAddress, { caCertificate: 'ca' }, { ca: pki.root })))).toEqual({ ok: true });
      for (let i = 0; i < 3; i++) {
        const res = await call(t.node.proxyUrl, '/');
        // Refused in the handshake (a TLS error), not left to the connect timeout.
        expect(res.status).toBe(502);
        expect(res.headers['x-lb-error']).toBe('upstream_tls');
      }
      // The same backend as an http1 pool: served.
      expect(await push(configWith(plainAddress, { caCertificate: 'ca' }, { ca: pki.root }))).toEqual({ ok: true });
      expect((await call(t.node.proxyUrl, '/')).status).toBe(200);
    } finally {
      await t.node.stop();
    }
  });
});
