// Issue 11, point 7 end to end: pools reach their backends over TLS, verified against a CA
// certificate resource, optionally with a client certificate (mTLS to backends); a backend whose
// certificate does not verify is refused (502 upstream_tls); the control plane's health checks use
// the same TLS settings; WebSocket tunnels to such a pool are TLS too. Clients speak plain HTTP to
// the data plane here; curl and a `ws` client drive it.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { api } from '../support/http.js';
import { testPki } from '../support/pki.js';
import { curl } from '../support/tls-clients.js';
import type { Stack } from '../support/stack.js';
import { startTlsStack } from '../support/tls-stack.js';
import { waitFor } from '../support/wait.js';

const pki = testPki();
const backendCert = pki.issue({ cn: 'api.internal', sans: ['DNS:api.internal', 'IP:127.0.0.1'] });
const foreignCert = pki.issue({ cn: 'api.internal', sans: ['DNS:api.internal', 'IP:127.0.0.1'], otherCa: true });
const clientCert = pki.issue({ cn: 'lb-to-backends', usage: 'client' });
let stack: Stack;
const servers: Server[] = [];

/** An HTTPS backend on loopback answering its name, whether it saw a client certificate, and /health. */
async function httpsBackend(name: string, cert: { chain: string; key: string }, mutual = false): Promise<string> {
  const server = createServer(
    { cert: cert.chain, key: cert.key, ...(mutual ? { ca: pki.root, requestCert: true, rejectUnauthorized: true } : {}) },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.setHeader('x-backend', name);
      res.end(`${name} ${req.url} client=${peer?.subject?.CN ?? 'none'}`);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A WebSocket echo backend over TLS: each message comes back prefixed with the backend's name and how the upgrade arrived. */
async function wssBackend(name: string, cert: { chain: string; key: string }): Promise<string> {
  const server = createServer({ cert: cert.chain, key: cert.key }, (_req, res) => res.end('not an upgrade'));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const how = (req.socket as TLSSocket).encrypted ? 'tls' : 'plain';
    ws.on('message', (data) => ws.send(`${name} ${how} ${req.url}: ${data.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Opens a WebSocket through the data plane and sends one message: the answer, or the HTTP status and x-lb-error of a refused upgrade. */
function wsRoundTrip(url: string, message: string): Promise<{ echo: string } | { status: number; error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => ws.send(message));
    ws.once('message', (data) => {
      resolve({ echo: data.toString() });
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, error: res.headers['x-lb-error'] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

beforeAll(async () => {
  stack = await startTlsStack({ dataPlanes: 1, backends: 0 });
});

afterAll(async () => {
  await stack?.stop();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const healthCheck = { path: '/health', intervalMs: 300, timeoutMs: 200, healthyThreshold: 1, unhealthyThreshold: 1 };

describe('TLS to backends (issue 11)', () => {
  it('verifies backends against the CA resource, presents the client certificate, and health-checks over TLS', async () => {
    const plainTls = await httpsBackend('secure-1', backendCert);
    const mutual = await httpsBackend('secure-2', backendCert, true);
    await stack.write('PUT', '/v1/certificates/internal-ca', { certificate: pki.root });
    await stack.write('PUT', '/v1/certificates/to-backends', { certificate: clientCert.chain, privateKey: clientCert.key });
    await stack.write('PUT', '/v1/pools/api', {
      backends: [
        { id: 's1', address: plainTls },
        { id: 's2', address: mutual },
      ],
      tls: { serverName: 'api.internal', caCertificate: 'internal-ca', clientCertificate: 'to-backends' },
      healthCheck,
    });
    await stack.write('PUT', '/v1/routes/api', { pools: [{ pool: 'api' }] });
    const dp = stack.dps[0]!;
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await curl([`${dp.url}/x`]);
      expect(res.status).toBe(200);
      seen.add(res.body);
    }
    expect([...seen].sort()).toEqual(['secure-1 /x client=none', 'secure-2 /x client=lb-to-backends']);
    const health = await waitFor(
      async () => {
        const res = await api('GET', `${stack.cp.url}/v1/pools/api/health`);
        const statuses = (res.body.backends as Array<{ id: string; status: string }>).map((b) => b.status);
        return statuses.every((s) => s === 'healthy') ? res.body : undefined;
      },
      { message: 'both TLS backends to be healthy' },
    );
    expect(health.backends.map((b: { lastProbe: { detail: string } }) => b.lastProbe.detail)).toEqual(['HTTP 200', 'HTTP 200']);
  });

  it('refuses a backend whose certificate does not verify: 502 upstream_tls, and its health check fails', async () => {
    const impostor = await httpsBackend('impostor', foreignCert);
    await stack.write('PUT', '/v1/pools/rogue', {
      backends: [{ id: 'r1', address: impostor }],
      tls: { serverName: 'api.internal', caCertificate: 'internal-ca' },
      healthCheck,
      // Keep routing to it whatever its health, so the refusal is the data plane's own.
      panicThresholdPercent: 100,
    });
    await stack.write('PUT', '/v1/routes/rogue', { match: { pathPrefix: '/rogue' }, pools: [{ pool: 'rogue' }] });
    const res = await curl([`${stack.dps[0]!.url}/rogue`]);
    expect(res.status).toBe(502);
    expect(res.headers.toLowerCase()).toContain('x-lb-error: upstream_tls');
    expect(res.body).not.toContain('impostor');
    const metrics = await (await fetch(`${stack.dps[0]!.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/lb_dp_upstream_errors_total\{pool="rogue",kind="tls"\} [1-9]/);
    const probe = await waitFor(
      async () => {
        const body = (await api('GET', `${stack.cp.url}/v1/pools/rogue/health`)).body;
        return body.backends[0]?.status === 'unhealthy' ? body.backends[0].lastProbe : undefined;
      },
      { message: 'the impostor to be unhealthy' },
    );
    expect(probe.detail).toMatch(/certificate|self.signed|issuer/i);
    // Encrypt-only (verify: false) reaches it.
    await stack.write('PUT', '/v1/pools/rogue', { backends: [{ id: 'r1', address: impostor }], tls: { verify: false }, panicThresholdPercent: 100 });
    const insecure = await curl([`${stack.dps[0]!.url}/rogue`]);
    expect(insecure.status).toBe(200);
    expect(insecure.body).toMatch(/^impostor /);
  });

  it('carries WebSocket tunnels to a TLS pool over TLS, verified like its requests', async () => {
    const chat = await wssBackend('chat-1', backendCert);
    const impostor = await wssBackend('chat-impostor', foreignCert);
    await stack.write('PUT', '/v1/certificates/internal-ca', { certificate: pki.root });
    await stack.write('PUT', '/v1/pools/chat', { backends: [{ id: 'c1', address: chat }], tls: { serverName: 'api.internal', caCertificate: 'internal-ca' } });
    await stack.write('PUT', '/v1/pools/chat-rogue', {
      backends: [{ id: 'c2', address: impostor }],
      tls: { serverName: 'api.internal', caCertificate: 'internal-ca' },
    });
    await stack.write('PUT', '/v1/routes/chat', { match: { pathPrefix: '/ws/' }, pools: [{ pool: 'chat' }] });
    await stack.write('PUT', '/v1/routes/chat-rogue', { match: { pathPrefix: '/ws-rogue/' }, pools: [{ pool: 'chat-rogue' }] });
    const base = stack.dps[0]!.url.replace('http://', 'ws://');
    expect(await wsRoundTrip(`${base}/ws/room`, 'hello')).toEqual({ echo: 'chat-1 tls /ws/room: hello' });
    // A backend whose certificate does not verify never gets the upgrade.
    expect(await wsRoundTrip(`${base}/ws-rogue/room`, 'hello')).toEqual({ status: 502, error: 'upstream_tls' });
  });
});
