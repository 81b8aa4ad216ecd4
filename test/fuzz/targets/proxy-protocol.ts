/**
 * The PROXY protocol header reader (packages/data-plane/src/l4/proxy-protocol-parser.ts), which
 * reads the first bytes of connections to listeners with acceptProxyProtocol, from raw bytes. Every
 * prefix of an input is scanned too, as the bytes may arrive in any split.
 *
 * Besides crashes and hangs it fails an input when verdicts disagree across prefixes (a longer
 * prefix must never turn `done` or `invalid` back into `more`, nor change the header found), when
 * it asks for more past the largest header taken, when a header is longer than the bytes seen, or
 * when it returns an address that is not an IP address of the family its header named or a port
 * outside 0..65535. A header it accepts must also survive being written again and read back.
 */
import { isIP } from 'node:net';
import { proxyProtocolHeader } from '../../../packages/data-plane/src/l4/proxy-protocol-header.js';
import { MAX_V2_HEADER, scanProxyHeader } from '../../../packages/data-plane/src/l4/proxy-protocol-parser.js';
import type { FuzzTarget } from '../engine/types.js';

export const target: FuzzTarget = {
  name: 'proxy-protocol',
  coverageFilter: '/packages/data-plane/src/l4/proxy-protocol',
  dictionary: [
    'PROXY ',
    'TCP4 ',
    'TCP6 ',
    'UNKNOWN',
    '\r\n',
    '\r\n\r\n\x00\r\nQUIT\n',
    '\x21\x11\x00\x0c',
    '\x21\x21\x00\x24',
    '\x20\x00\x00\x00',
    '127.0.0.1 ',
    '::1 ',
    '65535',
  ],
  run(data: Buffer): void {
    let decided: string | undefined;
    for (let end = 0; end <= data.length; end++) {
      const scan = scanProxyHeader(data.subarray(0, end));
      if (scan.state === 'more') {
        if (decided !== undefined) throw new Error(`prefix ${end} asks for more after a shorter one was decided`);
        if (end >= MAX_V2_HEADER) throw new Error(`asks for more past ${MAX_V2_HEADER} bytes`);
        continue;
      }
      const verdict = scan.state === 'invalid' ? 'invalid' : JSON.stringify(scan);
      if (decided !== undefined && decided !== verdict) throw new Error(`prefix ${end} decided ${verdict} after ${decided}`);
      decided ??= verdict;
      if (scan.state !== 'done') continue;
      if (scan.length > end) throw new Error(`a header of ${scan.length} bytes in ${end}`);
      const a = scan.addresses;
      if (a === undefined) continue;
      for (const address of [a.sourceAddress, a.destinationAddress]) if (isIP(address) === 0) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
      for (const port of [a.sourcePort, a.destinationPort]) if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not a port: ${port}`);
      for (const version of ['v1', 'v2'] as const) {
        const again = scanProxyHeader(proxyProtocolHeader(version, a));
        if (again.state !== 'done' || again.addresses === undefined) throw new Error(`${version} rewrite of ${JSON.stringify(a)} does not read back`);
        if (again.addresses.sourcePort !== a.sourcePort || again.addresses.destinationPort !== a.destinationPort)
          throw new Error(`${version} rewrite changed the ports of ${JSON.stringify(a)}`);
      }
    }
  },
};
