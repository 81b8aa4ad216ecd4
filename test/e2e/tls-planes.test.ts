// Issue 11, point 8 end to end: the planes' own links. gRPC is mutual TLS — a node without a
// certificate of the CA, or with one that names another node, gets nothing; a control plane on
// plaintext gRPC pushes no key (the node's NACK says why) unless it runs --dev-plaintext-secrets
// for loopback nodes; the REST API serves HTTPS; the control plane reaches etcd over mutual TLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { testPki } from '../support/pki.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { curl, sClient } from '../support/tls-clients.js';
import { controlPlaneTlsArgs, nodeCertificate, nodeTlsArgs, secretsKeyFile } from '../support/tls-stack.js';
import { TEST_ADMIN_TOKEN } from '../support/auth.js';
import { freePort, waitFor } from '../support/wait.js';

const pki = testPki();
const site = pki.issue({ cn: 'site.example' });
let etcd: EtcdServer;
const started: Array<ControlPlane | DataPlane> = [];

beforeAll(async () => {
  etcd = await EtcdServer.start();
});

afterAll(async () => {
  await Promise.allSettled(started.map((p) => p.stop()));
  await etcd?.stop();
});

async function nodeIds(cp: ControlPlane): Promise<string[]> {
  const nodes = (await api('GET', `${cp.url}/v1/nodes`)).body.nodes as Array<{ id: string; status: string }>;
  return nodes.filter((n) => n.status === 'connected').map((n) => n.id);
}

/** A config that needs a private key on every node: one HTTPS listener. */
async function httpsConfig(cp: ControlPlane, port: number): Promise<number> {
  const res = await api('PUT', `${cp.url}/v1/config`, {
    pools: {},
    routes: {},
    certificates: { site: { certificate: site.chain, privateKey: site.key } },
    listeners: { https: { port, protocol: 'https', tls: { certificates: ['site'] } } },
  });
  expect(res.status).toBe(200);
  return res.body.version as number;
}

describe('mutual TLS between the planes (issue 11)', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await ControlPlane.start({ etcd: etcd.url, prefix: '/mtls', extraArgs: controlPlaneTlsArgs() });
    started.push(cp);
  });

  it('serves a node whose certificate names it, and refuses one with a wrong, foreign or missing certificate', async () => {
    const good = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId: 'dp-1', extraArgs: nodeTlsArgs(nodeCertificate('dp-1')) });
    started.push(good);
    const port = await freePort();
    const version = await httpsConfig(cp, port);
    await waitFor(async () => (await good.appliedVersion()) === version, { message: 'dp-1 to apply the HTTPS listener' });
    expect((await sClient(`127.0.0.1:${port}`, { servername: 'site.example', caFile: pki.rootFile })).subject).toBe('CN = site.example');

    const tries: Array<[string, string[], RegExp]> = [
      // dp-1's certificate, presented as dp-9: a node cannot pose as another.
      ['dp-9', nodeTlsArgs(nodeCertificate('dp-1')), /PERMISSION_DENIED: node id \\"dp-9\\" is not in the node's client certificate \(it names dp-1\)/],
      // A certificate for dp-8, signed by a CA the control plane does not trust.
      ['dp-8', nodeTlsArgs(nodeCertificate('dp-8', { otherCa: true })), /cannot reach a control plane/],
      // No certificate at all: plaintext gRPC to a TLS port.
      ['dp-7', [], /cannot reach a control plane/],
    ];
    for (const [nodeId, extraArgs, message] of tries) {
      const bad = await DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId, extraArgs, waitReady: false });
      started.push(bad);
      await waitFor(() => message.test(bad.process.logs()), { message: `${nodeId} to be refused` });
      expect(await nodeIds(cp)).toEqual(['dp-1']);
      expect((await fetch(`${bad.adminUrl}/readyz`)).status).toBe(503);
      expect(await bad.appliedVersion()).toBe(0);
      await bad.stop();
    }
  });

  it('serves the REST API over HTTPS', async () => {
    const cert = pki.issue({ cn: 'api', sans: ['IP:127.0.0.1'] });
    const https = await ControlPlane.start({
      etcd: etcd.url,
      prefix: '/https-api',
      httpsCa: pki.root,
      extraArgs: ['--http-tls-cert', cert.chainFile, '--http-tls-key', cert.keyFile],
    });
    started.push(https);
    expect(https.url).toMatch(/^https:/);
    const ready = await curl(['--cacert', pki.rootFile, `${https.url}/readyz`]);
    expect(ready.status).toBe(200);
    const config = await curl(['--cacert', pki.rootFile, '-H', `authorization: Bearer ${TEST_ADMIN_TOKEN}`, `${https.url}/v1/config`]);
    expect(config.status).toBe(200);
    expect(JSON.parse(config.body)).toEqual({ version: 0, config: { pools: {}, routes: {} } });
    // Plain HTTP to it gets no API.
    expect((await curl([`http://127.0.0.1:${https.httpPort}/readyz`])).status).not.toBe(200);
    await https.stop();
  });
});

describe('plaintext gRPC (issue 11)', () => {
  it('pushes no private key — the node NACKs with the reason — unless --dev-plaintext-secrets and the node is on loopback', async () => {
    const keyFile = secretsKeyFile();
    const plain = await ControlPlane.start({ etcd: etcd.url, prefix: '/plain', extraArgs: ['--secrets-key-file', keyFile] });
    started.push(plain);
    const node = await DataPlane.start({ controlPlanes: [plain.grpcAddress], nodeId: 'dp-plain' });
    started.push(node);
    const version = await httpsConfig(plain, await freePort());
    const nack = await waitFor(
      async () => {
        const nodes = (await api('GET', `${plain.url}/v1/nodes`)).body.nodes as Array<{ id: string; lastNack: { version: number; error: string } | null }>;
        return nodes.find((n) => n.id === 'dp-plain' && n.lastNack?.version === version)?.lastNack ?? undefined;
      },
      { message: 'dp-plain to NACK the version that needs a key' },
    );
    expect(nack.error).toMatch(
      /^DP_ERR_TLS_UNAVAILABLE: listener "https" serves certificate "site" but this push carries no private key for it: the control plane sends private keys only over mutual TLS/,
    );
    await waitFor(() => /not sending private keys to this node/.test(plain.process.logs()), { message: 'the control plane to say it withheld keys' });
    expect(await node.appliedVersion()).toBe(0);

    // A replica with --dev-plaintext-secrets (same etcd prefix, same secrets key) serves loopback nodes their keys.
    const dev = await ControlPlane.start({ etcd: etcd.url, prefix: '/plain', extraArgs: ['--secrets-key-file', keyFile, '--dev-plaintext-secrets'] });
    started.push(dev);
    const devNode = await DataPlane.start({ controlPlanes: [dev.grpcAddress], nodeId: 'dp-dev', extraArgs: ['--bind-address', '127.0.0.2'] });
    started.push(devNode);
    await waitFor(async () => (await devNode.appliedVersion()) === version, { message: 'dp-dev to apply the listener' });
  });
});

describe('etcd over mutual TLS (issue 11)', () => {
  it('runs the control plane on an etcd that wants client certificates', async () => {
    const server = pki.issue({ cn: 'etcd', sans: ['IP:127.0.0.1', 'DNS:localhost'], usage: 'both' });
    const client = pki.issue({ cn: 'lb-control-plane-etcd', usage: 'client' });
    const secure = await EtcdServer.start({ tls: { certFile: server.chainFile, keyFile: server.keyFile, clientCaFile: pki.rootFile } });
    try {
      expect(secure.url).toMatch(/^https:/);
      const cp = await ControlPlane.start({
        etcd: secure.url,
        extraArgs: ['--etcd-ca', pki.rootFile, '--etcd-cert', client.chainFile, '--etcd-key', client.keyFile],
      });
      started.push(cp);
      const res = await api('PUT', `${cp.url}/v1/pools/web`, { backends: [] });
      expect(res.status).toBe(200);
      expect((await api('GET', `${cp.url}/v1/pools/web`)).status).toBe(200);
      await cp.stop();
      // Without a client certificate etcd refuses it: it keeps retrying and /readyz answers 503.
      const anonymous = await ControlPlane.start({ etcd: secure.url, extraArgs: ['--etcd-ca', pki.rootFile], waitReady: false });
      started.push(anonymous);
      await waitFor(() => /cannot read the current config; retrying/.test(anonymous.process.logs()), { message: 'the refused control plane to say so' });
      expect((await fetch(`${anonymous.url}/readyz`)).status).toBe(503);
      await anonymous.stop();
    } finally {
      await secure.stop();
    }
  });
});
