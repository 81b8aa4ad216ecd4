import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config, HealthCheck } from '@lb/shared';
import { testPki } from '../../../test/support/pki.js';
import { probeTargets } from '../src/health/health-checker.js';
import { httpProbe } from '../src/health/http-probe.js';
import { tcpProbe } from '../src/health/tcp-probe.js';

const pki = testPki();
const backend = pki.issue({ cn: 'backend.internal', sans: ['DNS:backend.internal', 'IP:127.0.0.1'] });
const client = pki.issue({ cn: 'prober', usage: 'client' });
const check: HealthCheck = {
  type: 'http',
  path: '/health',
  intervalMs: 1000,
  timeoutMs: 1000,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  expectedStatuses: [200],
};

let server: Server;
let address: string;

beforeAll(async () => {
  // Answers only clients that present a certificate of the test CA.
  server = createServer({ cert: backend.chain, key: backend.key, ca: pki.root, requestCert: true, rejectUnauthorized: true }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function config(tls: Record<string, unknown>): Config {
  return {
    pools: {
      api: { algorithm: 'round_robin', backends: [{ id: 'b1', address, weight: 1, state: 'active' }], healthCheck: check, tls: { verify: true, ...tls } },
    },
    routes: {},
    certificates: { ca: { certificate: pki.root }, prober: { certificate: client.chain }, other: { certificate: pki.issue({ cn: 'x', otherCa: true }).ca } },
  } as Config;
}

describe('health probes of TLS pools', () => {
  it('use the pool’s CA and client certificate, and fail when the backend does not verify', async () => {
    const [good] = probeTargets(config({ caCertificate: 'ca', clientCertificate: 'prober' }), new Map([['prober', client.key]]));
    expect(await httpProbe(good!, { timeoutMs: 2000, replica: 'r' })).toMatchObject({ ok: true, detail: 'HTTP 200' });
    expect(await tcpProbe({ ...good!, check: { ...check, type: 'tcp' } }, { timeoutMs: 2000, replica: 'r' })).toMatchObject({
      ok: true,
      detail: 'TLS handshake done',
    });
    const [untrusted] = probeTargets(config({ caCertificate: 'other', clientCertificate: 'prober' }), new Map([['prober', client.key]]));
    expect(await httpProbe(untrusted!, { timeoutMs: 2000, replica: 'r' })).toMatchObject({ ok: false, detail: expect.stringMatching(/certificate/i) });
    const [anonymous] = probeTargets(config({ caCertificate: 'ca' }));
    expect((await httpProbe(anonymous!, { timeoutMs: 2000, replica: 'r' })).ok).toBe(false);
    // The key is never part of what decides a restart: only a digest.
    expect(JSON.stringify(good!.tls!.id)).not.toContain('PRIVATE');
    expect(good!.tls!.id).not.toBe(untrusted!.tls!.id);
  });
});
