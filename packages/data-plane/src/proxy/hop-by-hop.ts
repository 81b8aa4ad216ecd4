/**
 * Header classification for the proxy, RFC 9110 §7.6.1: hop-by-hop headers describe one
 * connection and must not be forwarded, in either direction; nor may any header the Connection
 * header names. Raw header names are classified once and remembered (header names repeat across
 * requests), so the hot path does a Map lookup instead of lower-casing every name.
 *
 * Request header names with an underscore are dropped, as nginx drops them by default
 * (`underscores_in_headers off`): a backend that folds `_` into `-` (CGI, PHP, WSGI and some
 * frameworks do) would otherwise read `Transfer_Encoding` or `Content_Length` as framing the
 * proxy never saw, or `X_Forwarded_For` as the address the proxy vouches for.
 */

export const HeaderClass = {
  /** Forward unchanged. */
  Keep: 0,
  /** Hop-by-hop or replaced by the proxy: never forwarded. */
  Drop: 1,
  /** `Connection`: not forwarded, but the headers it lists are dropped too. */
  Connection: 2,
  Host: 3,
  XForwardedFor: 4,
  ContentLength: 5,
  TransferEncoding: 6,
  /** `X-Request-Id`: forwarded; the proxy adds one when it is absent. */
  RequestId: 7,
  /** `Upgrade`: hop-by-hop, but the forwarder tunnels a WebSocket upgrade. */
  Upgrade: 8,
  /** RFC 7239 `Forwarded`: passed on, with the proxy's element appended on routes that ask for it. */
  Forwarded: 9,
} as const;
export type HeaderClass = (typeof HeaderClass)[keyof typeof HeaderClass];

/** Hop-by-hop headers (lower case), dropped both ways. */
export const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
] as const;

const REQUEST_SPECIAL: Record<string, HeaderClass> = {
  connection: HeaderClass.Connection,
  host: HeaderClass.Host,
  'x-forwarded-for': HeaderClass.XForwardedFor,
  'content-length': HeaderClass.ContentLength,
  'transfer-encoding': HeaderClass.TransferEncoding,
  'x-request-id': HeaderClass.RequestId,
  upgrade: HeaderClass.Upgrade,
  // Set by the proxy from what it saw, never trusted from the client.
  'x-forwarded-proto': HeaderClass.Drop,
  'x-forwarded-host': HeaderClass.Drop,
  'x-forwarded-port': HeaderClass.Drop,
  forwarded: HeaderClass.Forwarded,
  // Node's server has already answered `100-continue` to the client; undici refuses the header.
  expect: HeaderClass.Drop,
};

const RESPONSE_SPECIAL: Record<string, HeaderClass> = {
  connection: HeaderClass.Connection,
  'transfer-encoding': HeaderClass.TransferEncoding,
};

function classifyLower(lower: string, special: Record<string, HeaderClass>): HeaderClass {
  const s = special[lower];
  if (s !== undefined) return s;
  return (HOP_BY_HOP as readonly string[]).includes(lower) ? HeaderClass.Drop : HeaderClass.Keep;
}

/** Remembers at most this many distinct raw names, so odd clients cannot grow it without bound. */
const CACHE_LIMIT = 1024;

class Classifier {
  private readonly cache = new Map<string, HeaderClass>();
  constructor(
    private readonly special: Record<string, HeaderClass>,
    /** Names with `_` are dropped. */
    private readonly dropUnderscores: boolean,
  ) {}

  classify(name: string): HeaderClass {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const c = this.dropUnderscores && name.includes('_') ? HeaderClass.Drop : classifyLower(name.toLowerCase(), this.special);
    if (this.cache.size < CACHE_LIMIT) this.cache.set(name, c);
    return c;
  }
}

const requestClassifier = new Classifier(REQUEST_SPECIAL, true);
const underscoreRequestClassifier = new Classifier(REQUEST_SPECIAL, false);
const responseClassifier = new Classifier(RESPONSE_SPECIAL, false);

/** What to do with request header names that contain `_` (`--underscore-headers`). */
export const UNDERSCORE_HEADERS = ['drop', 'allow'] as const;
export type UnderscoreHeaders = (typeof UNDERSCORE_HEADERS)[number];

export function classifyRequestHeader(name: string, underscores: UnderscoreHeaders = 'drop'): HeaderClass {
  return (underscores === 'drop' ? requestClassifier : underscoreRequestClassifier).classify(name);
}

export function classifyResponseHeader(name: string): HeaderClass {
  return responseClassifier.classify(name);
}

/**
 * Removes from a flat `[name, value, ...]` array every header named in a Connection header value
 * (`close` and `keep-alive` name no header worth a pass). Rare, so it may allocate.
 */
export function dropConnectionListed(headers: string[], connection: string): void {
  // Nearly every peer sends just `keep-alive` or `close`: skip the split for those.
  if (connection.length <= 10) {
    const v = connection.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return;
  }
  const listed = new Set<string>();
  for (const token of connection.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') listed.add(t);
  }
  if (listed.size === 0) return;
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if (listed.has(headers[r]!.toLowerCase())) continue;
    headers[w++] = headers[r]!;
    headers[w++] = headers[r + 1]!;
  }
  headers.length = w;
}

/**
 * Request headers to send upstream, from Node's `rawHeaders`. Hop-by-hop headers, X-Forwarded-*
 * and Host are left out (the forwarder adds its own); what it needs from them is returned.
 */
export interface RequestHeaderScan {
  headers: string[];
  host: string | undefined;
  forwardedFor: string | undefined;
  /** The client's `Forwarded` fields joined as one list, if any. */
  forwarded: string | undefined;
  /** The request has a body to stream (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
  /** It carries an X-Request-Id. */
  hasRequestId: boolean;
  /** More than one Host header: RFC 9112 §3.2 says answer 400 (two hosts are a smuggling tool). */
  duplicateHost: boolean;
  /** The body is chunked (Transfer-Encoding). */
  chunked: boolean;
  /** What Transfer-Encoding says, as TRANSFER_CODING. */
  transferCoding: number;
  /** The Upgrade header's value (never forwarded as such). */
  upgrade: string | undefined;
}

/** The request's Transfer-Encoding, as the proxy can (or cannot) pass it on. */
export const TRANSFER_CODING = {
  NONE: 0,
  /** Exactly `chunked`: the body is re-framed upstream. */
  CHUNKED: 1,
  /** The last coding is not `chunked`: the body's end cannot be known (RFC 9112 §6.3): 400 and close. */
  UNFRAMED: 2,
  /** Other codings before `chunked` (`gzip, chunked`): the proxy would lose them re-framing the body (RFC 9112 §6.1): 501. */
  UNSUPPORTED: 3,
} as const;

/** Classifies a (combined) Transfer-Encoding value. */
export function transferCodingOf(value: string): number {
  if (!endsWithChunked(value)) return TRANSFER_CODING.UNFRAMED;
  return value.trim().toLowerCase() === 'chunked' ? TRANSFER_CODING.CHUNKED : TRANSFER_CODING.UNSUPPORTED;
}

/** Whether a Transfer-Encoding value ends with the `chunked` coding. */
export function endsWithChunked(value: string): boolean {
  let end = value.length;
  while (end > 0 && (value.charCodeAt(end - 1) === 32 || value.charCodeAt(end - 1) === 9)) end--;
  if (end < 7 || value.slice(end - 7, end).toLowerCase() !== 'chunked') return false;
  if (end === 7) return true;
  const c = value.charCodeAt(end - 8);
  return c === 44 /* , */ || c === 32 || c === 9;
}

export function scanRequestHeaders(raw: readonly string[], out: RequestHeaderScan, underscores: UnderscoreHeaders = 'drop'): void {
  const headers: string[] = [];
  let transferEncoding: string | undefined;
  let host: string | undefined;
  let forwardedFor: string | undefined;
  let forwarded: string | undefined;
  let connection: string | undefined;
  let hasBody = false;
  let hasRequestId = false;
  let duplicateHost = false;
  let upgrade: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (classifyRequestHeader(name, underscores)) {
      case HeaderClass.Keep:
        headers.push(name, value);
        break;
      case HeaderClass.Host:
        if (host === undefined) host = value;
        else duplicateHost = true;
        break;
      case HeaderClass.RequestId:
        headers.push(name, value);
        hasRequestId = true;
        break;
      case HeaderClass.XForwardedFor:
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        break;
      case HeaderClass.Forwarded:
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      case HeaderClass.ContentLength:
        headers.push(name, value);
        if (value !== '0') hasBody = true;
        break;
      case HeaderClass.TransferEncoding:
        hasBody = true;
        // Several fields are one list (RFC 9110 §5.3).
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case HeaderClass.Connection:
        connection = connection === undefined ? value : `${connection},${value}`;
        break;
      case HeaderClass.Upgrade:
        upgrade = value;
        break;
      default:
        break;
    }
  }
  if (connection !== undefined) dropConnectionListed(headers, connection);
  out.upgrade = upgrade;
  out.headers = headers;
  out.host = host;
  out.forwardedFor = forwardedFor;
  out.forwarded = forwarded;
  out.hasBody = hasBody;
  out.hasRequestId = hasRequestId;
  out.duplicateHost = duplicateHost;
  out.chunked = transferEncoding !== undefined;
  out.transferCoding = transferEncoding === undefined ? TRANSFER_CODING.NONE : transferCodingOf(transferEncoding);
}

/** Whether an Upgrade header value asks for WebSocket (RFC 6455 §4.1: the token is case-insensitive). */
export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  if (upgrade === undefined) return false;
  for (const token of upgrade.split(',')) if (token.trim().toLowerCase() === 'websocket') return true;
  return false;
}

/** Response headers (latin1 strings, as the upstream client gives them) for node's writeHead, hop-by-hop removed. */
export function filterResponseHeaders(raw: readonly string[]): string[] {
  const headers: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (classifyResponseHeader(name)) {
      case HeaderClass.Keep:
        headers.push(name, raw[i + 1]!);
        break;
      case HeaderClass.Connection: {
        const value = raw[i + 1]!;
        connection = connection === undefined ? value : `${connection},${value}`;
        break;
      }
      default:
        break;
    }
  }
  if (connection !== undefined) dropConnectionListed(headers, connection);
  return headers;
}
