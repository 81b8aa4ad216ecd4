// Issue 11, points 1–6 end to end: listeners and certificates written through the API reach real
// data-plane processes over mutual TLS, and real clients (curl, openssl s_client, node tls) see
// SNI selection, rotation without dropping an open connection, redirects and HSTS, NACKs for a
// port that cannot be bound, expiry reporting, and a session resumed on another node.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../support/http.js';
import { testPki } from '../support/pki.js';
import { curl, sClient } from '../support/tls-clients.js';
import type { Stack } from '../support/stack.js';
import { bindAddressOf, startTlsStack } from '../support/tls-stack.js';
import { freePort, waitFor } from '../support/wait.js';

const pki = testPki();
const site = pki.issue({ cn: 'site.example', sans: ['DNS:site.example', 'DNS:*.site.example'] });
const rsa = pki.issue({ cn: 'rsa.example', keyType: 'rsa', sans: ['DNS:rsa.example'] });
let stack: Stack;
let port: number;

beforeAll(async () => {
  // The second node runs two workers: HTTPS listeners are opened in every worker.
  stack = await startTlsStack({
    dataPlanes: 2,
    backends: 2,
    controlPlaneArgs: ['--cert-warn-days', '1000'],
    nodeArgs: (i) => (i === 1 ? ['--workers', '2'] : []),
  });
  port = await freePort();
  const [b1, b2] = stack.backends;
  await stack.write('PUT', '/v1/pools/web', {
    backends: [
      { id: 'b1', address: b1!.address },
      { id: 'b2', address: b2!.address },
    ],
  });
  await stack.write('PUT', '/v1/certificates/site', { certificate: site.chain, privateKey: site.key });
  await stack.write('PUT', '/v1/certificates/rsa', { certificate: rsa.chain, privateKey: rsa.key });
  // One write opens the port on every node.
  await stack.write('PUT', '/v1/listeners/https', { port, protocol: 'https', tls: { certificates: ['site', 'rsa'] } });
  await stack.write('PUT', '/v1/routes/secure', {
    listeners: ['https'],
    pools: [{ pool: 'web' }],
    hsts: { maxAgeSeconds: 3600 },
    forwarded: true,
  });
  await stack.write('PUT', '/v1/routes/plain', { listeners: ['default'], pools: [{ pool: 'web' }], httpsRedirect: { port } });
});

afterAll(async () => {
  await stack?.stop();
});

const at = (node: number) => `${bindAddressOf(node)}:${port}`;

describe('HTTPS listeners (issue 11)', () => {
  it('serve by SNI on every node: exact beats wildcard, RSA beside an ECDSA default, clients without SNI get the default', async () => {
    for (const node of [0, 1]) {
      const rsaHello = await sClient(at(node), { servername: 'rsa.example', caFile: pki.rootFile });
      expect(rsaHello.subject, rsaHello.output).toBe('CN = rsa.example');
      expect(rsaHello.verified).toBe(true);
      expect((await sClient(at(node), { servername: 'a.site.example', caFile: pki.rootFile })).subject).toBe('CN = site.example');
      expect((await sClient(at(node), { caFile: pki.rootFile })).subject).toBe('CN = site.example');
      // TLS 1.3 and an RSA-only client both get the RSA certificate for rsa.example.
      const rsaOnly = await sClient(at(node), { servername: 'rsa.example', caFile: pki.rootFile, extra: ['-tls1_2', '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256'] });
      expect(rsaOnly.subject).toBe('CN = rsa.example');
    }
    const res = await curl(['--cacert', pki.rootFile, '--resolve', `site.example:${port}:${bindAddressOf(0)}`, `https://site.example:${port}/echo`]);
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body);
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-port']).toBe(String(port));
    expect(seen.headers.forwarded).toBe(`for=127.0.0.1;proto=https;host="site.example:${port}"`);
    expect(res.headers.toLowerCase()).toContain('strict-transport-security: max-age=3600');
  });

  it('redirect plain HTTP to HTTPS, without HSTS on the plain answer', async () => {
    const dp = stack.dps[0]!;
    const res = await curl(['-H', 'Host: site.example', `${dp.url}/a?b=c`]);
    expect(res.status).toBe(308);
    expect(res.headers).toMatch(new RegExp(`location: https://site\\.example:${port}/a\\?b=c`, 'i'));
    expect(res.headers.toLowerCase()).not.toContain('strict-transport-security');
    const followed = await curl([
      '-L',
      '--cacert',
      pki.rootFile,
      '--resolve',
      `site.example:${port}:${bindAddressOf(0)}`,
      '-H',
      'Host: site.example',
      `${dp.url}/`,
    ]);
    expect(followed.status).toBe(200);
  });

  it('show certificates by metadata only: no private key in any answer or log line', async () => {
    const cp = stack.cp.url;
    const list = await api('GET', `${cp}/v1/certificates`);
    expect(list.status).toBe(200);
    expect(list.body.certificates.map((c: { name: string; keyType: string; hasPrivateKey: boolean }) => [c.name, c.keyType, c.hasPrivateKey])).toEqual([
      ['site', 'ec prime256v1', true],
      ['rsa', 'rsa 2048', true],
    ]);
    // --cert-warn-days 1000: every certificate of pki.ts (825 days) is within the window.
    expect(list.body.warnings).toEqual([
      expect.stringMatching(/^certificate "site" expires in \d+ days/),
      expect.stringMatching(/^certificate "rsa" expires in/),
    ]);
    const reads = ['/v1/config', '/v1/certificates/site', '/v1/listeners', '/v1/versions', '/v1/nodes', '/v1/audit', '/metrics'];
    const versions = (await api('GET', `${cp}/v1/versions`)).body.versions as Array<{ version: number }>;
    for (const v of versions) reads.push(`/v1/versions/${v.version}`, `/v1/versions/${v.version}/diff`);
    const texts = await Promise.all(reads.map(async (path) => JSON.stringify((await api('GET', `${cp}${path}`)).body)));
    texts.push(...(await Promise.all(stack.dps.map(async (dp) => (await fetch(`${dp.adminUrl}/config`)).text()))));
    texts.push(stack.cp.process.logs(), ...stack.dps.map((dp) => dp.process.logs()));
    const keyLine = site.key.split('\n')[1]!;
    for (const text of texts) {
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(keyLine);
    }
  });

  it('refuse bad certificate input with 400 naming the problem, and change nothing', async () => {
    const cp = stack.cp.url;
    const before = await api('GET', `${cp}/v1/config`);
    const expired = pki.issue({ cn: 'old.example', expired: true });
    const chained = pki.issue({ cn: 'chained.example', viaIntermediate: true });
    const reversed = chained.chain
      .split(/(?=-----BEGIN CERTIFICATE-----)/)
      .reverse()
      .join('');
    const cases: Array<[string, string, unknown, string, RegExp]> = [
      ['PUT', '/v1/certificates/x', { certificate: site.chain, privateKey: rsa.key }, 'privateKey', /does not match the certificate/],
      ['PUT', '/v1/certificates/x', { certificate: 'hello', privateKey: site.key }, 'certificate', /is not PEM/],
      ['PUT', '/v1/certificates/x', { certificate: expired.chain, privateKey: expired.key }, 'certificates.x.certificate', /is not valid now/],
      ['PUT', '/v1/certificates/x', { certificate: reversed, privateKey: chained.key }, 'certificate', /chain out of order/],
      [
        'PUT',
        '/v1/listeners/more',
        { port: port + 1, protocol: 'https', tls: { certificates: ['missing'] } },
        'listeners.more.tls.certificates[0]',
        /does not exist/,
      ],
    ];
    for (const [method, path, body, field, message] of cases) {
      const res = await api(method, `${cp}${path}`, body);
      expect(res.status, `${path} ${field}`).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.errors).toContainEqual({ field, message: expect.stringMatching(message) });
      expect(JSON.stringify(res.body)).not.toContain('PRIVATE KEY');
    }
    const inUse = await api('DELETE', `${cp}/v1/certificates/rsa`);
    expect(inUse.status).toBe(409);
    expect(inUse.body).toMatchObject({ code: 'LB_CP_CERTIFICATE_IN_USE', usedBy: ['listeners.https.tls.certificates[1]'] });
    expect(await api('GET', `${cp}/v1/config`)).toMatchObject({ body: before.body });
  });

  it('rotate a certificate: new handshakes get it, a connection opened before keeps going', async () => {
    const old = connect({ host: bindAddressOf(0), port, servername: 'rsa.example', ca: pki.root });
    old.on('error', () => undefined);
    await new Promise((resolve) => old.once('secureConnect', resolve));
    const replies: string[] = [];
    old.on('data', (d: Buffer) => replies.push(d.toString()));
    const ask = async () => {
      const before = replies.length;
      old.write('GET / HTTP/1.1\r\nHost: rsa.example\r\n\r\n');
      await waitFor(() => replies.length > before, { message: 'an answer on the old connection' });
      return replies.at(-1)!;
    };
    expect(await ask()).toMatch(/^HTTP\/1\.1 200/);
    const renewed = pki.issue({ cn: 'rsa.example', keyType: 'rsa', sans: ['DNS:rsa.example'], usage: 'both' });
    await stack.write('PUT', '/v1/certificates/rsa', { certificate: renewed.chain, privateKey: renewed.key });
    const fresh = await sClient(at(0), { servername: 'rsa.example', caFile: pki.rootFile, extra: ['-showcerts'] });
    const presented = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(fresh.output)![0];
    expect(new X509Certificate(presented).fingerprint256).toBe(new X509Certificate(renewed.chain).fingerprint256);
    expect(await ask()).toMatch(/^HTTP\/1\.1 200/);
    old.end();
  });

  it('report expiry on both planes', async () => {
    const seconds = (text: string, metric: string) => Number(new RegExp(`${metric}\\{certificate="site"\\} (-?\\d+)`).exec(text)?.[1]);
    const expected = (Date.parse(new X509Certificate(site.chain).validTo) - Date.now()) / 1000;
    const cpMetrics = (await api('GET', `${stack.cp.url}/metrics`)).body as string;
    expect(Math.abs(seconds(cpMetrics, 'lb_cp_certificate_expiry_seconds') - expected)).toBeLessThan(120);
    for (const dp of stack.dps) {
      const text = await (await fetch(`${dp.adminUrl}/metrics`)).text();
      expect(Math.abs(seconds(text, 'lb_dp_certificate_expiry_seconds') - expected)).toBeLessThan(120);
    }
  });

  it('resume on node B a session node A started (shared ticket key)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-sess-'));
    const first = await sClient(at(0), { servername: 'site.example', caFile: pki.rootFile, sessOut: join(dir, 'a.pem') });
    expect(first.reused).toBe(false);
    const onB = await sClient(at(1), { servername: 'site.example', caFile: pki.rootFile, sessIn: join(dir, 'a.pem') });
    expect(onB.reused, onB.output).toBe(true);
    // The same on TLS 1.2 (session tickets, RFC 5077).
    await sClient(at(0), { servername: 'site.example', caFile: pki.rootFile, sessOut: join(dir, 'b.pem'), extra: ['-tls1_2'] });
    expect((await sClient(at(1), { servername: 'site.example', caFile: pki.rootFile, sessIn: join(dir, 'b.pem'), extra: ['-tls1_2'] })).reused).toBe(true);
  });

  it('NACK a port a node cannot bind, visible in GET /v1/nodes, and keep serving', async () => {
    const cp = stack.cp.url;
    const taken = stack.dps[0]!.port;
    const res = await api('PUT', `${cp}/v1/listeners/clash`, { port: taken, protocol: 'http' });
    expect(res.status).toBe(200);
    const nack = await waitFor(
      async () => {
        const nodes = (await api('GET', `${cp}/v1/nodes`)).body.nodes as Array<{ id: string; lastNack: { version: number; error: string } | null }>;
        return nodes.find((n) => n.id === 'dp-1' && n.lastNack?.version === res.body.version)?.lastNack ?? undefined;
      },
      { message: 'dp-1 to NACK the listener' },
    );
    expect(nack.error).toMatch(new RegExp(`^DP_ERR_LISTENER_BIND: listener "clash" cannot listen on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
    expect(stack.dps[0]!.process.running).toBe(true);
    expect((await sClient(at(0), { servername: 'rsa.example', caFile: pki.rootFile })).subject).toBe('CN = rsa.example');
    await stack.write('DELETE', '/v1/listeners/clash');
  });
});
