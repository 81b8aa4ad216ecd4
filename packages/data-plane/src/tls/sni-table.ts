/**
 * Which certificate a TLS handshake gets, from the name the client asks for (SNI): an exact name
 * beats a wildcard (`*.example.com` covers one label: `a.example.com`, not `a.b.example.com`
 * nor `example.com`), and anything else — no SNI, an unknown name — gets the listener's default.
 * When several certificates of a listener hold the same name (an RSA and an ECDSA one), they share
 * one context and OpenSSL picks the one the client can verify. Lookups are one or two map reads.
 */
import type { SecureContext } from 'node:tls';

export class SniTable {
  constructor(
    /** By lower-case name. */
    private readonly exact: ReadonlyMap<string, SecureContext>,
    /** By the suffix after `*`: `.example.com`. */
    private readonly wildcard: ReadonlyMap<string, SecureContext>,
  ) {}

  /** The context for `servername`, or undefined for the default one. */
  lookup(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.wildcard.get(name.slice(dot)) : undefined;
  }

  get size(): number {
    return this.exact.size + this.wildcard.size;
  }

  /** Whether every name leads to `context` (or to none): then the name need not be read at all. */
  onlyServes(context: SecureContext): boolean {
    for (const c of this.exact.values()) if (c !== context) return false;
    for (const c of this.wildcard.values()) if (c !== context) return false;
    return true;
  }
}

/**
 * Groups certificates by the names they hold: for every name, the certificates holding it (in
 * listener order). `contextFor` turns a group into one context (cached by the caller).
 */
export function buildSniTable(
  certificates: ReadonlyArray<{ name: string; names: readonly string[] }>,
  contextFor: (group: string[]) => SecureContext,
): SniTable {
  const exactGroups = new Map<string, string[]>();
  const wildcardGroups = new Map<string, string[]>();
  for (const cert of certificates) {
    for (const host of cert.names) {
      const target = host.startsWith('*.') ? wildcardGroups : exactGroups;
      const key = host.startsWith('*.') ? host.slice(1) : host;
      const group = target.get(key) ?? [];
      if (!group.includes(cert.name)) group.push(cert.name);
      target.set(key, group);
    }
  }
  const toContexts = (groups: Map<string, string[]>) => new Map([...groups].map(([host, group]) => [host, contextFor(group)] as const));
  return new SniTable(toContexts(exactGroups), toContexts(wildcardGroups));
}
