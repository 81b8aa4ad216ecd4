import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { testPki } from '../../../test/support/pki.js';
import { certificateNames, parseCertificateChain, publicKeyId } from '../src/config/certificate-pem.js';
import { diffConfigs } from '../src/config/diff.js';
import type { Config } from '../src/config/model.js';
import { validateCertificateBody, validateConfig, validateListener } from '../src/config/validate.js';

const pki = testPki();
const site = pki.issue({ cn: 'site.example', sans: ['DNS:site.example', 'DNS:*.site.example'] });
const chained = pki.issue({ cn: 'chained.example', viaIntermediate: true });

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pools: { web: { backends: [{ id: 'a', address: '127.0.0.1:9001' }] } },
    routes: { main: { pools: [{ pool: 'web' }] } },
    certificates: { site: { certificate: site.chain } },
    listeners: { https: { port: 8443, protocol: 'https', tls: { certificates: ['site'] } } },
    ...extra,
  };
}

function errorsOf(input: unknown): Array<{ field: string; message: string }> {
  const result = validateConfig(input);
  return result.ok ? [] : result.errors;
}

describe('listeners', () => {
  it('fill TLS defaults: TLS 1.2 and up, http/1.1, resumption for 300 s', () => {
    const result = validateConfig(base());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.listeners?.https?.tls).toEqual({
      certificates: ['site'],
      minVersion: 'TLSv1.2',
      alpn: ['http/1.1'],
      sessionResumption: true,
      sessionTimeoutSeconds: 300,
    });
  });

  it('need tls for https, refuse it for http, and keep "default" for --listen', () => {
    const errors = errorsOf(
      base({
        listeners: {
          bare: { port: 1, protocol: 'https' },
          plain: { port: 2, protocol: 'http', tls: { certificates: ['site'] } },
          default: { port: 3, protocol: 'http' },
        },
      }),
    );
    expect(errors.map((e) => e.field).sort()).toEqual(['listeners.bare.tls', 'listeners.default', 'listeners.plain.tls']);
  });

  it('refuse two listeners on one port, a missing certificate, a default certificate not served, and ciphers OpenSSL does not know', () => {
    const errors = errorsOf(
      base({
        listeners: {
          a: { port: 8443, protocol: 'https', tls: { certificates: ['site', 'nope'], defaultCertificate: 'other', ciphers: 'NOT-A-CIPHER' } },
          b: { port: 8443, protocol: 'http' },
        },
      }),
    );
    expect(errors).toEqual(
      expect.arrayContaining([
        { field: 'listeners.b.port', message: 'port 8443 is already listener "a"\'s' },
        { field: 'listeners.a.tls.certificates[1]', message: 'certificate "nope" does not exist' },
        { field: 'listeners.a.tls.defaultCertificate', message: 'must be one of tls.certificates (site, nope)' },
        expect.objectContaining({ field: 'listeners.a.tls.ciphers', message: expect.stringMatching(/^OpenSSL refuses it/) }),
      ]),
    );
  });

  it('can be validated alone, without certificate references', () => {
    expect(validateListener({ port: 443, protocol: 'https', tls: { certificates: ['anything'] } }).ok).toBe(true);
    expect(validateListener({ port: 0, protocol: 'ftp' }).ok).toBe(false);
  });
});

describe('certificates', () => {
  it('accept a chain in order, RSA and ECDSA alike', () => {
    const rsa = pki.issue({ cn: 'rsa.example', keyType: 'rsa' });
    const result = validateConfig(
      base({ certificates: { site: { certificate: site.chain }, rsa: { certificate: rsa.chain }, chained: { certificate: chained.chain } } }),
    );
    expect(result.ok).toBe(true);
  });

  it('refuse what is not PEM, a private key where the certificate goes (without echoing it), and a chain out of order', () => {
    const [leaf, intermediate] = chained.chain.split(/(?=-----BEGIN CERTIFICATE-----)/);
    const errors = errorsOf(
      base({
        certificates: {
          site: { certificate: site.chain },
          text: { certificate: 'hello' },
          key: { certificate: site.key },
          reversed: { certificate: `${intermediate}${leaf}` },
        },
      }),
    );
    expect(errors).toEqual([
      { field: 'certificates.text.certificate', message: expect.stringMatching(/^is not PEM/) },
      { field: 'certificates.key.certificate', message: expect.stringMatching(/found a PRIVATE KEY block \(a private key goes in privateKey/) },
      { field: 'certificates.reversed.certificate', message: expect.stringMatching(/^chain out of order: certificate 2 did not issue certificate 1/) },
    ]);
    expect(JSON.stringify(errors)).not.toContain('BEGIN PRIVATE KEY');
  });

  it('take the private key apart from the resource in a PUT body', () => {
    const result = validateCertificateBody({ certificate: site.chain, privateKey: site.key, allowExpired: false });
    expect(result).toEqual({ ok: true, value: { resource: { certificate: site.chain, allowExpired: false }, privateKey: site.key } });
    expect(validateCertificateBody({ certificate: site.chain, key: 'x' }).ok).toBe(false);
  });

  it('expose their names, SANs first, and the id of their public key', () => {
    const cert = new X509Certificate(site.chain);
    expect(certificateNames(cert)).toEqual(['site.example', '*.site.example']);
    const parsed = parseCertificateChain(chained.chain);
    expect(parsed.ok && parsed.chain.length).toBe(2);
    expect(publicKeyId(cert.publicKey)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('routes on listeners', () => {
  it('name existing listeners or "default", and may share a match when their listeners differ', () => {
    const ok = validateConfig(
      base({
        routes: {
          redirect: { listeners: ['default'], httpsRedirect: {}, pools: [{ pool: 'web' }] },
          secure: { listeners: ['https'], hsts: {}, forwarded: true, pools: [{ pool: 'web' }] },
        },
      }),
    );
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    expect(ok.value.routes.redirect?.httpsRedirect).toEqual({ status: 308, port: 443 });
    expect(ok.value.routes.secure?.hsts).toEqual({ maxAgeSeconds: 31536000, includeSubDomains: false, preload: false });
  });

  it('refuse a missing listener, the same match on the same listener, and a redirect on HTTPS only', () => {
    const errors = errorsOf(
      base({
        routes: {
          a: { listeners: ['https'], pools: [{ pool: 'web' }] },
          b: { listeners: ['https', 'ghost'], httpsRedirect: { status: 301 }, pools: [{ pool: 'web' }] },
        },
      }),
    );
    expect(errors).toEqual(
      expect.arrayContaining([
        { field: 'routes.b.listeners[1]', message: 'listener "ghost" does not exist ("default" is the --listen one)' },
        { field: 'routes.b.httpsRedirect', message: 'the route serves no plain-HTTP listener, so nothing would be redirected' },
        { field: 'routes.b.match', message: 'same match as route "a" on the same listener' },
      ]),
    );
  });
});

describe('pool tls', () => {
  it('verifies by default and names existing certificates', () => {
    const ok = validateConfig(base({ pools: { web: { backends: [], tls: { caCertificate: 'site' } } } }));
    expect(ok.ok && ok.value.pools.web?.tls).toEqual({ verify: true, caCertificate: 'site' });
    expect(errorsOf(base({ pools: { web: { backends: [], tls: { serverName: 'bad name' } } } })).map((e) => e.field)).toEqual(['pools.web.tls.serverName']);
    expect(errorsOf(base({ pools: { web: { backends: [], tls: { clientCertificate: 'none' } } } }))).toEqual([
      { field: 'pools.web.tls.clientCertificate', message: 'certificate "none" does not exist' },
    ]);
  });
});

describe('diff', () => {
  it('shows a certificate by its fingerprint and sees no change between absent and empty sections', () => {
    const before: Config = { pools: {}, routes: {} };
    const after: Config = { pools: {}, routes: {}, listeners: {}, certificates: { site: { certificate: site.chain } } };
    const changes = diffConfigs(before, after);
    const fingerprint = new X509Certificate(site.chain).fingerprint256;
    expect(changes).toEqual([{ op: 'add', path: 'certificates.site', after: { certificate: `sha256:${fingerprint}` } }]);
    expect(JSON.stringify(changes)).not.toContain('BEGIN');
    const rotated = { ...after, certificates: { site: { certificate: chained.chain } } };
    expect(diffConfigs(after, rotated)).toEqual([
      {
        op: 'change',
        path: 'certificates.site.certificate',
        before: `sha256:${fingerprint}`,
        after: `sha256:${new X509Certificate(chained.chain).fingerprint256}`,
      },
    ]);
  });
});
