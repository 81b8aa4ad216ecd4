import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, loadDiscovery, publicKeyId, type Config, type ControlMessage, type NodeMessage, type VersionedConfig } from '@lb/shared';
import { X509Certificate } from 'node:crypto';
import { testPki } from '../../../test/support/pki.js';
import { NoHealthSource } from '../src/push/health-source.js';
import type { PushViewSource } from '../src/push/merged-config.js';
import { buildPushView } from '../src/push/push-view.js';
import { NodeRegistry } from '../src/push/node-registry.js';
import { StreamServer } from '../src/push/stream-server.js';
import { MemoryKeyStore } from '../src/secrets/key-store.js';
import { checkPrivateKey, KeyVault } from '../src/secrets/key-vault.js';
import { SecretBox } from '../src/secrets/secret-box.js';
import { encodeConfig } from '../src/store/encoded-config.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';
import { isLoopbackPeer, pushSecurity } from '../src/tls/push-security.js';
import { SnapshotSecrets } from '../src/tls/snapshot-secrets.js';
import { MemoryTicketKeyStore, TICKET_KEY_BYTES, TicketKeyRing } from '../src/tls/ticket-keys.js';
import { waitFor } from './helpers.js';

const logger = createLogger('test', 'silent');
const pki = testPki();
const site = pki.issue({ cn: 'site.example' });
const cpCert = pki.issue({ cn: 'control-plane', sans: ['DNS:localhost', 'IP:127.0.0.1'] });
const dp1 = pki.issue({ cn: 'dp-1', usage: 'client' });
const stranger = pki.issue({ cn: 'dp-1', usage: 'client', otherCa: true });

const config: Config = {
  pools: {},
  routes: {},
  certificates: { site: { certificate: site.chain } },
  listeners: {
    https: {
      port: 8443,
      protocol: 'https',
      tls: { certificates: ['site'], minVersion: 'TLSv1.2', alpn: ['http/1.1'], sessionResumption: true, sessionTimeoutSeconds: 300 },
    },
  },
};

async function vaultWithSiteKey(): Promise<KeyVault> {
  const vault = new KeyVault(new MemoryKeyStore(), new SecretBox(randomBytes(32)));
  const checked = checkPrivateKey(site.key, new X509Certificate(site.chain));
  if (!checked.ok) throw new Error(checked.message);
  await vault.put(checked.key);
  return vault;
}

/** One version as the stream server's views see it (no registrations merged). */
function fixedSource(value: VersionedConfig): PushViewSource {
  const view = buildPushView({ ...value, historyId: 'h1', encoded: encodeConfig(value.config), guard: undefined }, [], 0);
  return { latest: () => view, subscribe: () => () => undefined, find: () => undefined };
}

const servers: StreamServer[] = [];
const clients: grpc.Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

/** A stream server over `secrets`, and a node that says hello as `nodeId` with `credentials`. */
async function connect(options: { mutualTls: boolean; dev?: boolean; nodeId: string; credentials: grpc.ChannelCredentials; source: PushViewSource }) {
  const server = new StreamServer({
    config: options.source,
    health: new NoHealthSource(),
    registry: new NodeRegistry({ store: new MemoryNodeStore(), replica: 'r', logger }),
    logger,
    security: pushSecurity({ mutualTls: options.mutualTls, devPlaintextSecrets: options.dev ?? false }),
    ...(options.mutualTls
      ? {
          credentials: grpc.ServerCredentials.createSsl(
            Buffer.from(pki.root),
            [{ cert_chain: Buffer.from(cpCert.chain), private_key: Buffer.from(cpCert.key) }],
            true,
          ),
        }
      : {}),
  });
  servers.push(server);
  const port = await server.listen('127.0.0.1', 0);
  const { Client } = loadDiscovery();
  const client = new Client(`127.0.0.1:${port}`, options.credentials);
  clients.push(client);
  const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<NodeMessage, ControlMessage> }).Stream();
  const received: ControlMessage[] = [];
  let status: grpc.StatusObject | undefined;
  call.on('data', (m: ControlMessage) => received.push(m));
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => undefined);
  call.write({ hello: { nodeId: options.nodeId, zone: '', cachedVersion: 0, address: '', cachedHealthRevision: 0, cachedHistoryId: '', cachedDigest: '' } });
  return { received, status: () => status, call };
}

function mtls(issued: { ca: string; chain: string; key: string }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(pki.root), Buffer.from(issued.key), Buffer.from(issued.chain));
}

describe('keys on the stream', () => {
  it('go over mutual TLS to the node its certificate names, with the shared ticket key', async () => {
    const pushed = new SnapshotSecrets({ config: fixedSource({ version: 3, config }), vault: await vaultWithSiteKey(), logger });
    pushed.start();
    await waitFor('secrets', () => pushed.latest());
    const node = await connect({ mutualTls: true, nodeId: 'dp-1', credentials: mtls(dp1), source: pushed });
    const snapshot = await waitFor('snapshot', () => node.received.find((m) => m.config)?.config ?? undefined);
    expect(snapshot.secrets?.privateKeys).toEqual([{ certificate: 'site', privateKeyPem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) }]);
    expect(snapshot.secrets?.unavailableReason).toBe('');
    expect(snapshot.configJson).not.toContain('PRIVATE KEY');
    node.call.end();
  });

  it('refuse a node whose certificate names another id, and one whose certificate another CA signed', async () => {
    const source = fixedSource({ version: 1, config: { pools: {}, routes: {} } });
    const impostor = await connect({ mutualTls: true, nodeId: 'dp-2', credentials: mtls(dp1), source });
    await waitFor('refusal', () => impostor.status());
    expect(impostor.status()).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringMatching(/node id "dp-2" is not in the node's client certificate \(it names dp-1\)/),
    });
    const foreign = await connect({ mutualTls: true, nodeId: 'dp-1', credentials: mtls(stranger), source });
    await waitFor('refusal', () => foreign.status());
    expect(foreign.status()?.code).toBe(grpc.status.UNAVAILABLE);
    expect(foreign.received).toEqual([]);
    const plaintext = await connect({ mutualTls: true, nodeId: 'dp-1', credentials: grpc.credentials.createInsecure(), source });
    await waitFor('refusal', () => plaintext.status());
    expect(plaintext.received).toEqual([]);
  });

  it('are withheld over plaintext, with the reason; sent to loopback only with the dev flag', async () => {
    const pushed = new SnapshotSecrets({ config: fixedSource({ version: 3, config }), vault: await vaultWithSiteKey(), logger });
    pushed.start();
    await waitFor('secrets', () => pushed.latest());
    const plain = await connect({ mutualTls: false, nodeId: 'dp-1', credentials: grpc.credentials.createInsecure(), source: pushed });
    const withheld = await waitFor('snapshot', () => plain.received.find((m) => m.config)?.config ?? undefined);
    expect(withheld.secrets).toEqual({
      privateKeys: [],
      sessionTicketKeys: [],
      unavailableReason: expect.stringMatching(/^the control plane sends private keys only over mutual TLS/),
    });
    const dev = await connect({ mutualTls: false, dev: true, nodeId: 'dp-1', credentials: grpc.credentials.createInsecure(), source: pushed });
    const sent = await waitFor('snapshot', () => dev.received.find((m) => m.config)?.config ?? undefined);
    expect(sent.secrets?.privateKeys.map((k) => k.certificate)).toEqual(['site']);
    plain.call.end();
    dev.call.end();
    expect(isLoopbackPeer('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackPeer('[::1]:5000')).toBe(true);
    expect(isLoopbackPeer('10.0.0.2:5000')).toBe(false);
  });

  it('say which key cannot be opened, and publish again when the ticket key turns', async () => {
    const empty = new KeyVault(new MemoryKeyStore(), new SecretBox(randomBytes(32)));
    let now = Date.parse('2026-12-01T00:00:00Z');
    const ring = new TicketKeyRing({ store: new MemoryTicketKeyStore(), box: new SecretBox(randomBytes(32)), rotationMs: 3_600_000, logger, now: () => now });
    await ring.check();
    const first = ring.current();
    expect(first?.length).toBe(TICKET_KEY_BYTES);
    const pushed = new SnapshotSecrets({ config: fixedSource({ version: 3, config }), vault: empty, tickets: ring, logger });
    pushed.start();
    const one = await waitFor('secrets', () => pushed.latest());
    expect(one.secrets?.unavailableReason).toBe('the key of certificate "site" is not stored');
    expect(one.secrets?.sessionTicketKeys).toEqual([first]);
    // Not due yet: the same key; due: a new one, and the same version is published again.
    now += 1_000;
    await ring.check();
    expect(ring.current()).toBe(first);
    now += 3_600_000;
    await ring.check();
    expect(ring.current()?.equals(first!)).toBe(false);
    const two = await waitFor('republished', () => (pushed.latest()!.secretsId !== one.secretsId ? pushed.latest() : undefined));
    expect(two.version).toBe(3);
    expect(two.digest).toBe(one.digest);
    expect(two.secrets?.sessionTicketKeys[0]?.equals(ring.current()!)).toBe(true);
    ring.stop();
    pushed.stop();
  });

  it('reach a node that runs the version as an empty delta when only the ticket key turned', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const ring = new TicketKeyRing({ store: new MemoryTicketKeyStore(), box: new SecretBox(randomBytes(32)), rotationMs: 3_600_000, logger, now: () => now });
    await ring.check();
    const pushed = new SnapshotSecrets({ config: fixedSource({ version: 3, config }), vault: await vaultWithSiteKey(), tickets: ring, logger });
    pushed.start();
    await waitFor('secrets', () => pushed.latest());
    const node = await connect({ mutualTls: false, dev: true, nodeId: 'dp-1', credentials: grpc.credentials.createInsecure(), source: pushed });
    const configs = () => node.received.filter((m) => m.config).map((m) => m.config!);
    const first = await waitFor('snapshot', () => configs()[0]);
    expect(first.configJson).not.toBe('');
    node.call.write({ ack: { nonce: first.nonce, version: first.version, kind: 'PUSH_KIND_CONFIG' } });
    now += 3_600_000 + 1_000;
    await ring.check();
    const second = await waitFor('the turned key', () => configs()[1]);
    expect(second).toMatchObject({ version: 3, baseVersion: 3, configJson: '', upserted: [], removed: [], digest: first.digest });
    expect(second.secrets?.sessionTicketKeys[0]?.equals(ring.current()!)).toBe(true);
    expect(second.secrets?.privateKeys.map((k) => k.certificate)).toEqual(['site']);
    node.call.end();
    ring.stop();
    pushed.stop();
  });

  it('share one ticket key between replicas that race to create and rotate it', async () => {
    const store = new MemoryTicketKeyStore();
    const box = new SecretBox(randomBytes(32));
    let now = Date.parse('2026-12-01T00:00:00Z');
    const a = new TicketKeyRing({ store, box, rotationMs: 60_000, logger, now: () => now });
    const b = new TicketKeyRing({ store, box, rotationMs: 60_000, logger, now: () => now });
    await Promise.all([a.check(), b.check()]);
    expect(a.current()?.equals(b.current()!)).toBe(true);
    now += 60_000;
    await Promise.all([b.check(), a.check()]);
    expect(a.current()?.equals(b.current()!)).toBe(true);
    // A replica with another secrets key cannot open it, and keeps no key rather than a wrong one.
    const stranger = new TicketKeyRing({ store, box: new SecretBox(randomBytes(32)), rotationMs: 60_000, logger, now: () => now });
    await stranger.check();
    expect(stranger.current()).toBeUndefined();
  });

  it('tell every listener of a new ticket key, even when one of them throws', async () => {
    const ring = new TicketKeyRing({ store: new MemoryTicketKeyStore(), box: new SecretBox(randomBytes(32)), rotationMs: 60_000, logger });
    let heard = 0;
    ring.subscribe(() => {
      throw new Error('a broken listener');
    });
    ring.subscribe(() => heard++);
    await ring.check();
    expect(ring.current()?.length).toBe(TICKET_KEY_BYTES);
    expect(heard).toBe(1);
  });
});
