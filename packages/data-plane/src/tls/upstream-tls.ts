/**
 * TLS from the data plane to a pool's backends (`pools.<name>.tls`), compiled once per snapshot:
 * one client context per distinct trust anchor and client certificate — the CA certificate
 * resource (else the system's CAs), and the client certificate with its pushed key for backends
 * that want mutual TLS. A pool that presents a certificate whose key the push lacks NACKs it.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { type ConnectionOptions, createSecureContext, type SecureContext } from 'node:tls';
import type { Config } from '@lb/shared';
import type { KeyMaterial } from './key-material.js';

export interface UpstreamTls {
  readonly context: SecureContext;
  /** SNI and the name the backend's certificate must hold; undefined: the backend's host when it is a name. */
  readonly servername: string | undefined;
  /** Verify the backend's chain and name (false: encrypt only). */
  readonly verify: boolean;
  /** What the settings are made of: upstream pools with different TLS never share a connection. */
  readonly identity: string;
}

/**
 * What tls.connect takes for an HTTP/1.1 connection (a pooled one, or a WebSocket tunnel) to a
 * backend of a pool with `secure`: SNI and the name the certificate must hold are the pool's
 * serverName, else the backend's host when it is a name; `session` resumes an earlier one.
 */
export function http1TlsConnectOptions(secure: UpstreamTls, host: string, port: number, session?: Buffer): ConnectionOptions {
  const servername = secure.servername ?? (isIP(host) === 0 ? host : undefined);
  return {
    host,
    port,
    secureContext: secure.context,
    ...(servername !== undefined ? { servername } : {}),
    rejectUnauthorized: secure.verify,
    ...(session !== undefined ? { session } : {}),
    ALPNProtocols: ['http/1.1'],
  };
}

export type UpstreamTlsResult = { ok: true; byPool: ReadonlyMap<string, UpstreamTls> } | { ok: false; error: string };

export class UpstreamTlsCompiler {
  private contexts = new Map<string, SecureContext>();

  compile(config: Config, material: KeyMaterial): UpstreamTlsResult {
    const byPool = new Map<string, UpstreamTls>();
    const used = new Map<string, SecureContext>();
    for (const [name, pool] of Object.entries(config.pools)) {
      const tls = pool.tls;
      if (tls === undefined) continue;
      const ca = tls.caCertificate === undefined ? undefined : config.certificates?.[tls.caCertificate]?.certificate;
      const cert = tls.clientCertificate === undefined ? undefined : config.certificates?.[tls.clientCertificate]?.certificate;
      const key = tls.clientCertificate === undefined ? undefined : material.keys.get(tls.clientCertificate);
      if (cert !== undefined && key === undefined) {
        const why = material.unavailableReason !== '' ? material.unavailableReason : 'the control plane sent no key for it';
        return { ok: false, error: `pool "${name}" presents certificate "${tls.clientCertificate}" but this push carries no private key for it: ${why}` };
      }
      const contextId = createHash('sha256')
        .update(ca ?? '')
        .update('\u0000')
        .update(cert ?? '')
        .update('\u0000')
        .update(key ?? '')
        .digest('hex');
      let context = used.get(contextId) ?? this.contexts.get(contextId);
      if (context === undefined) {
        try {
          context = createSecureContext({ ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key } : {}) });
        } catch (err) {
          return { ok: false, error: `pool "${name}": its TLS settings cannot be used: ${(err as Error).message}` };
        }
      }
      used.set(contextId, context);
      const identity = createHash('sha256')
        .update(`${contextId}\u0000${tls.serverName ?? ''}\u0000${tls.verify}`)
        .digest('hex')
        .slice(0, 16);
      byPool.set(name, { context, servername: tls.serverName, verify: tls.verify, identity });
    }
    this.contexts = used;
    return { ok: true, byPool };
  }
}
