/**
 * Header fields between the proxy's flat `[name, value, …]` lists (HTTP/1.1's view, latin1) and
 * node:http2's header objects, both directions: names lower-cased (HTTP/2 has no upper case),
 * pseudo-headers and connection-specific fields left out (RFC 9113 §8.2.2), repeats as lists.
 */
import type { OutgoingHttpHeaders } from 'node:http2';

/** Fields node's http2 takes once only (it refuses a list for them): the first one wins. */
export const SINGLE_VALUE = new Set([
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'etag',
  'expires',
  'from',
  'last-modified',
  'location',
  'max-forwards',
  'retry-after',
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'x-content-type-options',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'range',
  'referer',
  'user-agent',
  'proxy-authorization',
  'dnt',
  'tk',
  'upgrade-insecure-requests',
]);
/** Never sent in HTTP/2 (RFC 9113 §8.2.2); the proxy's HTTP/1.1 filters drop them already, but a header rule could add one. */
export const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

/** Flat `[name, value, …]` fields as an HTTP/2 header object: names lower-cased, repeats as lists. */
export function http2HeaderObject(raw: readonly string[], into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name.charCodeAt(0) === 58 /* : */ || CONNECTION_SPECIFIC.has(name)) continue;
    const value = raw[i + 1]!;
    const had = into[name];
    if (had === undefined) into[name] = value;
    else if (SINGLE_VALUE.has(name)) continue;
    else if (Array.isArray(had)) had.push(value);
    else into[name] = [had as string, value];
  }
  return into;
}

/** A received raw header list (node's flat `[name, value, …]`) without its pseudo-headers. */
export function withoutPseudo(raw: readonly string[]): string[] {
  let i = 0;
  while (i < raw.length && raw[i]!.charCodeAt(0) === 58 /* : */) i += 2;
  const out = raw.slice(i);
  // Pseudo-headers come first (RFC 9113 §8.3); anything else is refused by nghttp2 already.
  return out;
}
