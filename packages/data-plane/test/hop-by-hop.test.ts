import { describe, expect, it } from 'vitest';
import { filterResponseHeaders, scanRequestHeaders, TRANSFER_CODING, transferCodingOf, type RequestHeaderScan } from '../src/proxy/hop-by-hop.js';
import { isValidHostHeader } from '../src/proxy/host-header.js';

function scan(raw: string[], underscores: 'drop' | 'allow' = 'drop'): RequestHeaderScan {
  const out: RequestHeaderScan = {
    headers: [],
    host: undefined,
    forwardedFor: undefined,
    forwarded: undefined,
    hasBody: false,
    hasRequestId: false,
    duplicateHost: false,
    chunked: false,
    transferCoding: TRANSFER_CODING.NONE,
    upgrade: undefined,
  };
  scanRequestHeaders(raw, out, underscores);
  return out;
}

describe('request headers', () => {
  it('drops hop-by-hop headers and those the Connection header lists', () => {
    const out = scan([
      'Host',
      'example.com',
      'Connection',
      'keep-alive, X-Secret',
      'Keep-Alive',
      'timeout=5',
      'Proxy-Connection',
      'keep-alive',
      'TE',
      'trailers',
      'Trailer',
      'x-t',
      'Upgrade',
      'websocket',
      'Proxy-Authorization',
      'Basic x',
      'Proxy-Authenticate',
      'Basic',
      'x-secret',
      '1',
      'Accept',
      '*/*',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'evil',
      'Expect',
      '100-continue',
      'Cookie',
      'a=1',
    ]);
    expect(out.headers).toEqual(['Accept', '*/*', 'Cookie', 'a=1']);
    expect(out.host).toBe('example.com');
    expect(out.hasBody).toBe(false);
  });

  it('joins X-Forwarded-For values and notices bodies', () => {
    const out = scan(['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'Content-Length', '5']);
    expect(out.forwardedFor).toBe('1.1.1.1, 2.2.2.2');
    expect(out.hasBody).toBe(true);
    expect(out.headers).toEqual(['Content-Length', '5']);
    expect(scan(['Transfer-Encoding', 'chunked']).hasBody).toBe(true);
    expect(scan(['Content-Length', '0']).hasBody).toBe(false);
  });
});

describe('request framing and names', () => {
  it('drops names with an underscore unless they are allowed', () => {
    const raw = ['Transfer_Encoding', 'chunked', 'Content_Length', '3', 'X_Api_Key', 'k', 'Accept', '*/*'];
    expect(scan(raw).headers).toEqual(['Accept', '*/*']);
    expect(scan(raw).hasBody).toBe(false);
    expect(scan(raw, 'allow').headers).toEqual(raw);
  });

  it('classifies Transfer-Encoding: chunked alone, unframed, or with codings the proxy cannot keep', () => {
    expect(transferCodingOf('chunked')).toBe(TRANSFER_CODING.CHUNKED);
    expect(transferCodingOf(' Chunked ')).toBe(TRANSFER_CODING.CHUNKED);
    expect(transferCodingOf('gzip, chunked')).toBe(TRANSFER_CODING.UNSUPPORTED);
    expect(transferCodingOf('chunked, gzip')).toBe(TRANSFER_CODING.UNFRAMED);
    expect(transferCodingOf('gzip')).toBe(TRANSFER_CODING.UNFRAMED);
    expect(transferCodingOf('xchunked')).toBe(TRANSFER_CODING.UNFRAMED);
    // Two fields are one list.
    expect(scan(['Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked']).transferCoding).toBe(TRANSFER_CODING.UNSUPPORTED);
    expect(scan(['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked']).transferCoding).toBe(TRANSFER_CODING.UNSUPPORTED);
  });

  it.each(['example.com', 'Example.COM:8080', 'a_b.internal', '10.0.0.1:80', '[::1]', '[::1]:443', '[::ffff:10.0.0.1]:80', 'localhost'])(
    'accepts Host %j',
    (host) => {
      expect(isValidHostHeader(host)).toBe(true);
    },
  );

  it.each(['', 'x@y', 'a,b', 'a b', 'a/b', 'a\\b', 'a:', 'a:99999', 'a:80:80', '[::1', '[zz]', '[::1]x', 'a?b', 'a#b', '%41'])('refuses Host %j', (host) => {
    expect(isValidHostHeader(host)).toBe(false);
  });
});

describe('response headers', () => {
  it('drops hop-by-hop headers and keeps repeated ones', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Transfer-Encoding',
      'chunked',
      'Connection',
      'X-Internal',
      'X-Internal',
      'a',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Keep-Alive',
      'timeout=5',
      'Upgrade',
      'h2c',
    ];
    expect(filterResponseHeaders(raw)).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });

  it('keeps non-ASCII bytes as they came', () => {
    const raw = ['X-Name', Buffer.from([0x63, 0xe9]).toString('latin1')];
    expect(filterResponseHeaders(raw)).toEqual(['X-Name', 'c\u00e9']);
  });
});
