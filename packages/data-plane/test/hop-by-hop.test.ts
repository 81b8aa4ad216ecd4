import { describe, expect, it } from 'vitest';
import { filterResponseHeaders, scanRequestHeaders, type RequestHeaderScan } from '../src/proxy/hop-by-hop.js';

function scan(raw: string[]): RequestHeaderScan {
  const out: RequestHeaderScan = {
    headers: [],
    host: undefined,
    forwardedFor: undefined,
    hasBody: false,
    hasRequestId: false,
    duplicateHost: false,
    badTransferEncoding: false,
    chunked: false,
  };
  scanRequestHeaders(raw, out);
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
