/**
 * Reading certificate resources: a PEM chain (the certificate, then each issuer in order), the
 * names it serves, its public key's identity. Both planes use it — the control plane to validate
 * and describe certificates, the data plane to pick them by SNI. Messages never quote the input:
 * an operator may paste a private key where a certificate belongs.
 */
import { createHash, type KeyObject, X509Certificate } from 'node:crypto';

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Key types a served certificate may have (node's asymmetricKeyType). */
export const CERTIFICATE_KEY_TYPES = ['rsa', 'ec'] as const;

export type ChainResult = { ok: true; chain: X509Certificate[] } | { ok: false; message: string };

/** Parses a PEM chain and checks that each certificate was issued (and signed) by the next. */
export function parseCertificateChain(pem: string): ChainResult {
  const blocks = [...pem.matchAll(BLOCK_RE)];
  if (blocks.length === 0) return { ok: false, message: 'is not PEM: expected one or more "-----BEGIN CERTIFICATE-----" blocks' };
  const other = blocks.find((b) => b[1] !== 'CERTIFICATE');
  if (other !== undefined) {
    const hint = /PRIVATE KEY/.test(other[1]!) ? ' (a private key goes in privateKey, never in certificate)' : '';
    return { ok: false, message: `must hold only CERTIFICATE blocks, found a ${other[1]} block${hint}` };
  }
  const chain: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block[0]));
    } catch {
      return { ok: false, message: `certificate ${i + 1} of the chain is not a valid X.509 certificate` };
    }
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const issuer = chain[i + 1]!;
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
      return {
        ok: false,
        message: `chain out of order: certificate ${i + 2} did not issue certificate ${i + 1} (list the certificate first, then each issuer in turn)`,
      };
    }
  }
  return { ok: true, chain };
}

/** `rsa 2048` or `ec prime256v1`: what GET /v1/certificates shows as keyType. */
export function describePublicKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails;
  if (type === 'rsa' || type === 'rsa-pss') return `${type} ${details?.modulusLength ?? ''}`.trim();
  if (type === 'ec') return `ec ${details?.namedCurve ?? ''}`.trim();
  return type;
}

/**
 * The identity of a key pair: SHA-256 of the public key (SubjectPublicKeyInfo, DER), hex. A
 * certificate's private key is stored and found under the id of the certificate's public key.
 */
export function publicKeyId(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** The certificate's DNS names (SANs), lower case; the subject's CN only when there are none (legacy certificates). */
export function certificateNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(/,\s*/)) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
  }
  if (names.length > 0) return names;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

/** The SANs as the certificate lists them (`DNS:a.example`, `IP Address:10.0.0.1`). */
export function subjectAltNames(cert: X509Certificate): string[] {
  const text = cert.subjectAltName;
  return text === undefined || text === '' ? [] : text.split(/,\s*/);
}

/** Whether `at` (ms) falls outside the certificate's validity period. */
export function isExpiredAt(cert: X509Certificate, at: number): boolean {
  return at > Date.parse(cert.validTo) || at < Date.parse(cert.validFrom);
}

/** Seconds until each certificate of `certificates` expires (negative once expired): the `*_certificate_expiry_seconds` gauges. */
export function certificateExpiries(certificates: Record<string, { certificate: string }> | undefined, now: number): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const [name, resource] of Object.entries(certificates ?? {})) {
    try {
      out.push([name, Math.floor((Date.parse(new X509Certificate(resource.certificate).validTo) - now) / 1000)]);
    } catch {
      // A stored certificate always parses; one that does not has no expiry to report.
    }
  }
  return out;
}
