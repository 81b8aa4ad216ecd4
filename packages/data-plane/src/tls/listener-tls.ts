/**
 * An HTTPS listener's TLS, compiled from its policy, its certificates and their pushed private
 * keys: its default context, the SNI table of the others, ALPN, and the shared session-ticket key. Everything that can fail — a missing key, a key OpenSSL refuses — fails
 * here, before anything is bound or swapped, and becomes the NACK's reason.
 *
 * Contexts are cached by what they are made of (certificates, keys, policy, ticket key), so a
 * push that changes a pool does not rebuild every listener's contexts; and every context of a
 * listener carries the same session id context and ticket key, on every node, which is what lets
 * a session resume on another node.
 */
import { constants, createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { certificateNames, type Config, type ListenerTls } from '@lb/shared';
import type { KeyMaterial } from './key-material.js';
import { buildSniTable, type SniTable } from './sni-table.js';
import { alpnWireFormat } from './tls-acceptor.js';

export interface ListenerTlsPlan {
  /** For clients without SNI or asking for a name no certificate holds. */
  readonly defaultContext: SecureContext;
  readonly sni: SniTable;
  /** Some name leads to another context than the default: the ClientHello must be read first. */
  readonly choosesBySni: boolean;
  readonly alpn: readonly string[];
  /** `alpn` as OpenSSL takes it. */
  readonly alpnWire: Buffer;
  /** The certificates served, for /config: name, SHA-256 fingerprint, names. */
  readonly certificates: ReadonlyArray<{ name: string; fingerprint: string; names: string[] }>;
}

export type TlsCompileResult = { ok: true; plan: ListenerTlsPlan } | { ok: false; error: string };

/** The same on every node for a listener: part of what a resumed session must match. */
function sessionIdContext(listener: string): string {
  return createHash('sha256').update(`lb-listener:${listener}`).digest('hex').slice(0, 32);
}

function digest(...parts: Array<string | Buffer | undefined>): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p ?? '').update('\u0000');
  return hash.digest('hex');
}

/**
 * Whether `keyPem` is the private key of `certPem`. OpenSSL does not tell on its own when the two
 * have different types: an RSA key beside an ECDSA certificate lands in another slot of the
 * context, and every handshake would fail instead of this push.
 */
function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

export class ListenerTlsCompiler {
  /** Contexts by the digest of what made them; pruned to those in use after every compile round. */
  private contexts = new Map<string, SecureContext>();
  private used = new Set<string>();
  /** Certificate and key pairs already found to match (by digest): checked once each. */
  private readonly matching = new Set<string>();

  /** Compiles one listener; call endRound() once every listener of a snapshot is compiled. */
  compile(name: string, tls: ListenerTls, config: Config, material: KeyMaterial): TlsCompileResult {
    const resources = config.certificates ?? {};
    const policy: SecureContextOptions = {
      minVersion: tls.minVersion,
      ...(tls.ciphers !== undefined ? { ciphers: tls.ciphers } : {}),
      sessionIdContext: sessionIdContext(name),
      sessionTimeout: tls.sessionTimeoutSeconds,
      // Without resumption: no tickets; and node keeps no session cache of its own.
      ...(tls.sessionResumption ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
      ...(tls.sessionResumption && material.ticketKey !== undefined ? { ticketKeys: material.ticketKey } : {}),
    };
    const policyId = digest(JSON.stringify({ ...policy, ticketKeys: undefined }), tls.sessionResumption ? material.ticketKey : undefined);
    const served: Array<{ name: string; fingerprint: string; names: string[]; pem: string; key: string }> = [];
    for (const certificate of tls.certificates) {
      const pem = resources[certificate]?.certificate;
      if (pem === undefined) return { ok: false, error: `certificate "${certificate}" is not in the config` };
      const key = material.keys.get(certificate);
      if (key === undefined) {
        const why = material.unavailableReason !== '' ? material.unavailableReason : 'the control plane sent no key for it';
        return { ok: false, error: `listener "${name}" serves certificate "${certificate}" but this push carries no private key for it: ${why}` };
      }
      const pair = digest(pem, key);
      if (!this.matching.has(pair)) {
        if (!keyMatches(pem, key)) return { ok: false, error: `listener "${name}": the private key pushed for certificate "${certificate}" does not match it` };
        if (this.matching.size > 4096) this.matching.clear();
        this.matching.add(pair);
      }
      const leaf = new X509Certificate(pem);
      served.push({ name: certificate, fingerprint: leaf.fingerprint256, names: certificateNames(leaf), pem, key });
    }
    const byName = new Map(served.map((s) => [s.name, s]));
    let failure: string | undefined;
    const contextFor = (group: string[]): SecureContext => {
      const certs = group.map((g) => byName.get(g)!);
      const id = digest(policyId, ...certs.flatMap((c) => [c.pem, c.key]));
      this.used.add(id);
      const cached = this.contexts.get(id);
      if (cached !== undefined) return cached;
      try {
        const context = createSecureContext({ ...policy, cert: certs.map((c) => c.pem), key: certs.map((c) => c.key) });
        this.contexts.set(id, context);
        return context;
      } catch (err) {
        // OpenSSL's message names the problem (a key that does not match), never the key. Nothing
        // is cached, so the same push fails the same way again.
        failure ??= `listener "${name}": certificate ${group.map((g) => `"${g}"`).join(', ')} cannot be served: ${(err as Error).message}`;
        return createSecureContext(policy);
      }
    };
    const sni = buildSniTable(served, contextFor);
    const defaultContext = contextFor([tls.defaultCertificate ?? tls.certificates[0]!]);
    if (failure !== undefined) return { ok: false, error: failure };
    return {
      ok: true,
      plan: {
        defaultContext,
        sni,
        choosesBySni: !sni.onlyServes(defaultContext),
        alpn: [...tls.alpn],
        alpnWire: alpnWireFormat(tls.alpn),
        certificates: served.map(({ name: n, fingerprint, names }) => ({ name: n, fingerprint, names })),
      },
    };
  }

  /** The round's snapshot was refused: the running contexts stay cached. */
  abortRound(): void {
    this.used = new Set();
  }

  /** The round's snapshot runs now: forgets contexts none of its listeners uses. */
  endRound(): void {
    for (const id of [...this.contexts.keys()]) if (!this.used.has(id)) this.contexts.delete(id);
    this.used = new Set();
  }
}
