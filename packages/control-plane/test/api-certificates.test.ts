import { randomBytes, X509Certificate } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/pki.js';
import { DEFAULT_CERT_WARN_DAYS } from '../src/app.js';
import { MemoryKeyStore } from '../src/secrets/key-store.js';
import { KeyVault } from '../src/secrets/key-vault.js';
import { SecretBox } from '../src/secrets/secret-box.js';
import { json, pool, testApp, type TestApp } from './helpers.js';

const pki = testPki();
const site = pki.issue({ cn: 'site.example' });
const rsa = pki.issue({ cn: 'rsa.example', keyType: 'rsa' });
const expired = pki.issue({ cn: 'old.example', expired: true });
const chained = pki.issue({ cn: 'chained.example', viaIntermediate: true });

let t: TestApp;
let keys: MemoryKeyStore;

beforeEach(async () => {
  keys = new MemoryKeyStore();
  t = await testApp({ tls: { vault: new KeyVault(keys, new SecretBox(randomBytes(32))), warnDays: DEFAULT_CERT_WARN_DAYS } });
});

async function config(): Promise<{ version: number; config: Record<string, unknown> }> {
  return json(await t.app.inject({ method: 'GET', url: '/v1/config' }));
}

function put(name: string, body: unknown, query = '') {
  return t.app.inject({ method: 'PUT', url: `/v1/certificates/${name}${query}`, payload: body as object });
}

/** Every response body of every read endpoint, as text: no private key may show in any. */
async function everythingReadable(): Promise<string> {
  const urls = ['/v1/config', '/v1/certificates', '/v1/certificates/site', '/v1/versions', '/v1/versions/1', '/v1/versions/2/diff?against=0', '/v1/listeners'];
  const bodies = await Promise.all(urls.map((url) => t.app.inject({ method: 'GET', url })));
  return bodies.map((r) => r.body).join('\n');
}

describe('PUT /v1/certificates/{name}', () => {
  it('stores the key sealed outside the config and answers metadata only', async () => {
    const res = await put('site', { certificate: site.chain, privateKey: site.key });
    expect(res.statusCode).toBe(200);
    const body = json<{ version: number; certificate: Record<string, unknown> }>(res);
    expect(body.version).toBe(1);
    const leaf = new X509Certificate(site.chain);
    expect(body.certificate).toMatchObject({
      name: 'site',
      subjectAltNames: ['DNS:site.example'],
      fingerprintSha256: leaf.fingerprint256,
      keyType: 'ec prime256v1',
      hasPrivateKey: true,
      chainLength: 1,
      usedBy: [],
    });
    // The config holds the certificate, never the key; the key store holds it sealed.
    const current = await config();
    expect(current.config).toMatchObject({ certificates: { site: { certificate: site.chain } } });
    expect([...keys.keys.values()]).toHaveLength(1);
    const stored = JSON.stringify([...keys.keys.values()]);
    expect(stored).not.toContain('PRIVATE KEY');
    expect(stored).toContain('AES-256-GCM');
    // A listener serving it reads back; no endpoint shows the key.
    const listener = await t.app.inject({
      method: 'PUT',
      url: '/v1/listeners/https',
      payload: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } },
    });
    expect(listener.statusCode).toBe(200);
    const all = await everythingReadable();
    expect(all).not.toContain('PRIVATE KEY');
    expect(all).not.toContain(site.key.split('\n')[1]!);
  });

  it('lists RSA and ECDSA certificates with warnings for those expiring soon', async () => {
    expect((await put('site', { certificate: site.chain, privateKey: site.key })).statusCode).toBe(200);
    expect((await put('rsa', { certificate: rsa.chain, privateKey: rsa.key })).statusCode).toBe(200);
    expect((await put('ca', { certificate: pki.root })).statusCode).toBe(200);
    const list = json<{ certificates: Array<Record<string, unknown>>; warnings: string[] }>(await t.app.inject({ method: 'GET', url: '/v1/certificates' }));
    expect(list.certificates.map((c) => [c.name, c.keyType, c.hasPrivateKey, c.isCa])).toEqual([
      ['site', 'ec prime256v1', true, false],
      ['rsa', 'rsa 2048', true, false],
      ['ca', 'ec prime256v1', false, true],
    ]);
    // pki.ts issues for 825 days: no warning at 21 days, one at 1000.
    expect(list.warnings).toEqual([]);
    const wary = await testApp({ tls: { vault: new KeyVault(keys, undefined), warnDays: 1000 } });
    await wary.app.inject({ method: 'PUT', url: '/v1/certificates/rsa', payload: { certificate: rsa.chain } });
    const warned = json<{ warnings: string[] }>(await wary.app.inject({ method: 'GET', url: '/v1/certificates' }));
    expect(warned.warnings).toEqual([expect.stringMatching(/^certificate "rsa" expires in \d+ days/)]);
  });

  it('refuses bad input with 400 naming the field, and changes nothing', async () => {
    const reversed = chained.chain
      .split(/(?=-----BEGIN CERTIFICATE-----)/)
      .reverse()
      .join('');
    const cases: Array<[unknown, string, RegExp]> = [
      [{ certificate: 'not pem', privateKey: site.key }, 'certificate', /^is not PEM/],
      [{ certificate: site.chain, privateKey: rsa.key }, 'privateKey', /^does not match the certificate/],
      [{ certificate: site.chain, privateKey: 'garbage' }, 'privateKey', /^is not a PEM private key/],
      [{ certificate: reversed }, 'certificate', /^chain out of order/],
      [{ certificate: expired.chain, privateKey: expired.key }, 'certificates.old.certificate', /^is not valid now .* set allowExpired/],
      [{ certificate: site.chain, extra: 1 }, 'extra', /unknown field/],
    ];
    for (const [body, field, message] of cases) {
      const res = await put('old', body);
      expect(res.statusCode, JSON.stringify(field)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const problem = json<{ code: string; errors: Array<{ field: string; message: string }> }>(res);
      expect(problem.code).toBe('LB_CP_VALIDATION');
      expect(problem.errors).toContainEqual({ field, message: expect.stringMatching(message) });
      expect(res.body).not.toContain('PRIVATE KEY');
    }
    expect((await config()).version).toBe(0);
    // allowExpired stores it anyway.
    const allowed = await put('old', { certificate: expired.chain, privateKey: expired.key, allowExpired: true });
    expect(allowed.statusCode).toBe(200);
    expect(json<{ certificate: { warning: string } }>(allowed).certificate.warning).toMatch(/^expired on /);
  });

  it('needs a stored key for what a listener serves, and refuses to delete a certificate in use', async () => {
    expect((await put('site', { certificate: site.chain })).statusCode).toBe(200);
    const listener = await t.app.inject({
      method: 'PUT',
      url: '/v1/listeners/https',
      payload: { port: 8443, protocol: 'https', tls: { certificates: ['site', 'ghost'] } },
    });
    expect(listener.statusCode).toBe(400);
    expect(json<{ errors: unknown[] }>(listener).errors).toEqual([
      { field: 'listeners.https.tls.certificates[1]', message: 'certificate "ghost" does not exist' },
    ]);
    const keyless = await t.app.inject({
      method: 'PUT',
      url: '/v1/listeners/https',
      payload: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } },
    });
    expect(json<{ errors: unknown[] }>(keyless).errors).toEqual([
      {
        field: 'listeners.https.tls.certificates[0]',
        message: expect.stringMatching(/^certificate "site" has no private key: upload it with PUT \/v1\/certificates\/site/),
      },
    ]);
    // Uploading the key (same certificate) makes the listener acceptable.
    expect((await put('site', { certificate: site.chain, privateKey: site.key })).statusCode).toBe(200);
    const ok = await t.app.inject({ method: 'PUT', url: '/v1/listeners/https', payload: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } } });
    expect(ok.statusCode).toBe(200);
    const before = await config();
    const del = await t.app.inject({ method: 'DELETE', url: '/v1/certificates/site' });
    expect(del.statusCode).toBe(409);
    expect(json(del)).toMatchObject({ code: 'LB_CP_CERTIFICATE_IN_USE', usedBy: ['listeners.https.tls.certificates[0]'] });
    expect(await config()).toEqual(before);
    // Once the listener is gone it can be deleted, and the sections vanish when empty.
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/listeners/https' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/certificates/site' })).statusCode).toBe(200);
    expect((await config()).config).toEqual({ pools: {}, routes: {} });
  });

  it('rolls certificates back with the config, and the rolled-back certificate still finds its key', async () => {
    await put('site', { certificate: site.chain, privateKey: site.key });
    await t.app.inject({ method: 'PUT', url: '/v1/listeners/https', payload: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } } });
    const rotated = await put('site', { certificate: rsa.chain, privateKey: rsa.key });
    expect(json<{ version: number; changes: unknown[] }>(rotated).changes).toEqual([
      {
        op: 'change',
        path: 'certificates.site.certificate',
        before: `sha256:${new X509Certificate(site.chain).fingerprint256}`,
        after: `sha256:${new X509Certificate(rsa.chain).fingerprint256}`,
      },
    ]);
    const back = await t.app.inject({ method: 'POST', url: '/v1/versions/2/rollback' });
    expect(back.statusCode).toBe(200);
    const described = json<{ certificate: Record<string, unknown> }>(await t.app.inject({ method: 'GET', url: '/v1/certificates/site' }));
    expect(described.certificate).toMatchObject({ keyType: 'ec prime256v1', hasPrivateKey: true });
  });

  it('renews a certificate that keeps its key without sending the key again', async () => {
    expect((await put('site', { certificate: site.chain, privateKey: site.key })).statusCode).toBe(200);
    await t.app.inject({ method: 'PUT', url: '/v1/listeners/https', payload: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } } });
    const renewed = pki.issue({ cn: 'site.example', renewalOf: site, usage: 'both' });
    expect(renewed.chain).not.toBe(site.chain);
    const res = await put('site', { certificate: renewed.chain });
    expect(res.statusCode).toBe(200);
    expect(json<{ certificate: { hasPrivateKey: boolean; fingerprintSha256: string } }>(res).certificate).toMatchObject({
      hasPrivateKey: true,
      fingerprintSha256: new X509Certificate(renewed.chain).fingerprint256,
    });
    expect(keys.keys.size).toBe(1);
  });

  it('takes keys inline in PUT /v1/config, never stores them in the version, and a dry run stores nothing', async () => {
    const whole = {
      pools: { web: pool() },
      routes: { web: { listeners: ['https'], pools: [{ pool: 'web' }] } },
      certificates: { site: { certificate: site.chain, privateKey: site.key } },
      listeners: { https: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } } },
    };
    const dry = await t.app.inject({ method: 'PUT', url: '/v1/config?dryRun=true', payload: whole });
    expect(dry.statusCode).toBe(200);
    expect(keys.keys.size).toBe(0);
    const res = await t.app.inject({ method: 'PUT', url: '/v1/config', payload: whole });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('PRIVATE KEY');
    expect(keys.keys.size).toBe(1);
    expect(JSON.stringify(await config())).not.toContain('PRIVATE KEY');
    // What GET answers goes back unchanged: a no-op.
    const again = await t.app.inject({ method: 'PUT', url: '/v1/config', payload: await config() });
    expect(json(again)).toMatchObject({ committed: false, changes: [] });
    const wrong = await t.app.inject({
      method: 'PUT',
      url: '/v1/config',
      payload: { ...whole, certificates: { site: { certificate: site.chain, privateKey: rsa.key } } },
    });
    expect(wrong.statusCode).toBe(400);
    expect(json<{ errors: unknown[] }>(wrong).errors).toContainEqual({
      field: 'certificates.site.privateKey',
      message: expect.stringMatching(/^does not match/),
    });
  });

  it('answers 409 when the control plane has no --secrets-key-file', async () => {
    const bare = await testApp();
    const res = await bare.app.inject({ method: 'PUT', url: '/v1/certificates/site', payload: { certificate: site.chain, privateKey: site.key } });
    expect(res.statusCode).toBe(409);
    expect(json(res)).toMatchObject({ code: 'LB_CP_SECRETS_KEY_MISSING' });
    expect(json<{ version: number }>(await bare.app.inject({ method: 'GET', url: '/v1/config' })).version).toBe(0);
  });

  it('reports lb_cp_certificate_expiry_seconds', async () => {
    await put('site', { certificate: site.chain, privateKey: site.key });
    const current = await t.store.current();
    t.metrics.certificates = () => current.config;
    const text = await t.metrics.registry.metrics();
    const seconds = Number(/lb_cp_certificate_expiry_seconds\{certificate="site"\} (-?\d+)/.exec(text)?.[1]);
    const expected = (Date.parse(new X509Certificate(site.chain).validTo) - Date.now()) / 1000;
    expect(Math.abs(seconds - expected)).toBeLessThan(60);
  });
});
