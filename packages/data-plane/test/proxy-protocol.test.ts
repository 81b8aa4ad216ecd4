import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { proxyProtocolHeader, unmapIPv4 } from '../src/l4/proxy-protocol-header.js';
import { MAX_V1_HEADER, scanProxyHeader } from '../src/l4/proxy-protocol-parser.js';

const v4 = { sourceAddress: '192.0.2.1', sourcePort: 56324, destinationAddress: '198.51.100.7', destinationPort: 443 };
const v6 = { sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::1', destinationPort: 65535 };

describe('scanProxyHeader', () => {
  it('reads v1 lines of TCP4, TCP6 and UNKNOWN, saying where the connection bytes start', () => {
    const line = Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET /');
    expect(scanProxyHeader(line)).toEqual({ state: 'done', length: line.length - 5, addresses: v4 });
    expect(scanProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 65535\r\n'))).toMatchObject({ addresses: v6 });
    expect(scanProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ state: 'done', length: 15, addresses: undefined });
  });

  it('asks for more until a header is whole, in any split', () => {
    for (const header of [proxyProtocolHeader('v1', v4), proxyProtocolHeader('v2', v4), proxyProtocolHeader('v2', v6)]) {
      for (let end = 0; end < header.length; end++) expect(scanProxyHeader(header.subarray(0, end)).state).toBe('more');
      expect(scanProxyHeader(header).state).toBe('done');
    }
  });

  it('refuses what is not a well-formed header', () => {
    const refused = [
      'GET / HTTP/1.1\r\n',
      'PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n',
      'PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.7 65536 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.7 01 2\r\n',
      'PROXY TCP4 192.0.2.1 198.51.100.7 1\r\n',
      'PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n',
      `PROXY ${'x'.repeat(MAX_V1_HEADER)}`,
    ];
    for (const text of refused) expect(scanProxyHeader(Buffer.from(text)).state, text).toBe('invalid');
    const v2 = proxyProtocolHeader('v2', v4);
    const badCommand = Buffer.from(v2);
    badCommand[12] = 0x22;
    expect(scanProxyHeader(badCommand).state).toBe('invalid');
    const short = Buffer.from(v2);
    short.writeUInt16BE(4, 14);
    expect(scanProxyHeader(short).state).toBe('invalid');
  });

  it('keeps the connection’s own addresses for v2 LOCAL (a balancer’s health check)', () => {
    expect(scanProxyHeader(proxyProtocolHeader('v2', undefined))).toEqual({ state: 'done', length: 16, addresses: undefined });
  });
});

describe('proxyProtocolHeader', () => {
  it('writes what the parser reads back, for both versions and families', () => {
    for (const version of ['v1', 'v2'] as const) {
      for (const addresses of [v4, v6]) {
        const header = proxyProtocolHeader(version, addresses);
        expect(scanProxyHeader(header)).toEqual({ state: 'done', length: header.length, addresses });
      }
    }
    expect(proxyProtocolHeader('v1', v4).toString()).toBe('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n');
  });

  it('sends IPv4-mapped clients as IPv4, and mixed families as IPv6', () => {
    expect(proxyProtocolHeader('v1', { ...v4, sourceAddress: '::ffff:192.0.2.1' }).toString()).toBe('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n');
    const mixed = scanProxyHeader(proxyProtocolHeader('v2', { ...v4, destinationAddress: '2001:db8::7' }));
    expect(mixed).toMatchObject({ state: 'done', addresses: { sourceAddress: '::ffff:192.0.2.1', destinationAddress: '2001:db8::7' } });
    expect(unmapIPv4('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(proxyProtocolHeader('v1', { ...v4, sourceAddress: '' }).toString()).toBe('PROXY UNKNOWN\r\n');
  });

  it('prints v2 IPv6 addresses as node does (RFC 5952)', () => {
    for (const address of ['2001:db8::1', '::', '1:0:0:2::3', '2001:db8:0:0:1:0:0:1', 'fe80::1:2:3:4:5', '1:2:3:4:5:6:7:8']) {
      const scan = scanProxyHeader(proxyProtocolHeader('v2', { ...v6, sourceAddress: address }));
      const seen = scan.state === 'done' ? scan.addresses?.sourceAddress : undefined;
      expect(isIPv6(seen ?? '')).toBe(true);
      expect(seen).toBe(new URL(`http://[${address}]/`).hostname.slice(1, -1));
    }
  });
});
