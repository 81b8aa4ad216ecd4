/**
 * What the API tells about a certificate resource: metadata only (subject, names, issuer,
 * validity, fingerprint, key type), whether a private key is stored for it, who uses it, and a
 * warning when it expires within --cert-warn-days. Never the key, which this module never sees.
 */
import { describePublicKey, parseCertificateChain, publicKeyId, subjectAltNames, type CertificateResource, type Config } from '@lb/shared';

export interface CertificateDetails {
  name: string;
  subject: string;
  subjectAltNames: string[];
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** SHA-256 of the leaf certificate, `AB:CD:…`. */
  fingerprintSha256: string;
  /** `rsa 2048`, `ec prime256v1`. */
  keyType: string;
  /** The id its private key is stored under (hex SHA-256 of the public key). */
  publicKeyId: string;
  chainLength: number;
  isCa: boolean;
  allowExpired: boolean;
  hasPrivateKey: boolean;
  /** Listeners and pools that name it: `listeners.web-https.tls.certificates[0]`, `pools.api.tls.caCertificate`. */
  usedBy: string[];
  /** Whole days until notAfter (negative once expired). */
  expiresInDays: number;
  /** Set when expired, not valid yet, or expiring within the warning window. */
  warning?: string;
}

/** Every place in `config` that names certificate `name`. */
export function certificateUsers(config: Config, name: string): string[] {
  const users: string[] = [];
  for (const [listener, l] of Object.entries(config.listeners ?? {})) {
    const at = l.tls?.certificates.indexOf(name) ?? -1;
    if (at >= 0) users.push(`listeners.${listener}.tls.certificates[${at}]`);
  }
  for (const [pool, p] of Object.entries(config.pools)) {
    if (p.tls?.caCertificate === name) users.push(`pools.${pool}.tls.caCertificate`);
    if (p.tls?.clientCertificate === name) users.push(`pools.${pool}.tls.clientCertificate`);
  }
  return users;
}

/** Certificates whose private key is needed: served by a listener or presented to backends. */
export function certificatesNeedingKeys(config: Config): Set<string> {
  const names = new Set<string>();
  for (const l of Object.values(config.listeners ?? {})) for (const name of l.tls?.certificates ?? []) names.add(name);
  for (const p of Object.values(config.pools)) if (p.tls?.clientCertificate !== undefined) names.add(p.tls.clientCertificate);
  return names;
}

const DAY_MS = 86_400_000;

export function describeCertificate(
  name: string,
  resource: CertificateResource,
  config: Config,
  hasPrivateKey: boolean,
  options: { now: number; warnDays: number },
): CertificateDetails {
  const parsed = parseCertificateChain(resource.certificate);
  if (!parsed.ok) throw new Error(`stored certificate "${name}" does not parse: ${parsed.message}`);
  const leaf = parsed.chain[0]!;
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  const expiresInDays = Math.floor((notAfter - options.now) / DAY_MS);
  let warning: string | undefined;
  if (notAfter < options.now) warning = `expired on ${new Date(notAfter).toISOString()}`;
  else if (notBefore > options.now) warning = `not valid until ${new Date(notBefore).toISOString()}`;
  else if (notAfter - options.now < options.warnDays * DAY_MS) warning = `expires in ${expiresInDays} days (on ${new Date(notAfter).toISOString()}): rotate it`;
  return {
    name,
    subject: leaf.subject.replace(/\n/g, ', '),
    subjectAltNames: subjectAltNames(leaf),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    notBefore: new Date(notBefore).toISOString(),
    notAfter: new Date(notAfter).toISOString(),
    fingerprintSha256: leaf.fingerprint256,
    keyType: describePublicKey(leaf.publicKey),
    publicKeyId: publicKeyId(leaf.publicKey),
    chainLength: parsed.chain.length,
    isCa: leaf.ca,
    allowExpired: resource.allowExpired === true,
    hasPrivateKey,
    usedBy: certificateUsers(config, name),
    expiresInDays,
    ...(warning !== undefined ? { warning } : {}),
  };
}
