/**
 * The data plane's ClientHello reader (packages/data-plane/src/tls/client-hello.ts), which looks at
 * the first bytes of every HTTPS connection before OpenSSL does, from raw bytes. An input is what a
 * client sends first; every prefix of it is scanned too, as the bytes may arrive in any split.
 *
 * Besides crashes and hangs it fails an input when the reader's verdicts disagree across prefixes
 * (a longer prefix must never turn `done` back into `more`, nor change the name found), when it
 * asks for more bytes past MAX_CLIENT_HELLO, or when it returns a name that is not a lower-case
 * host name.
 */
import { MAX_CLIENT_HELLO, scanClientHello } from '../../../packages/data-plane/src/tls/client-hello.js';
import type { FuzzTarget } from '../engine/types.js';

const NAME_RE = /^[a-z0-9_][a-z0-9_-]*(\.[a-z0-9_][a-z0-9_-]*)*$/;

export const target: FuzzTarget = {
  name: 'tls-client-hello',
  coverageFilter: '/packages/data-plane/src/tls/client-hello',
  // Record and handshake types, the server_name extension's type, a host_name entry.
  dictionary: ['\x16\x03\x01', '\x16\x03\x03', '\x01\x00', '\x00\x00', '\x00\x0b\x00\x00\x08', 'example.com', '\x03\x03'],
  run(data: Buffer): void {
    let decided: { servername: string | undefined } | undefined;
    for (let end = 0; end <= data.length; end++) {
      const scan = scanClientHello(data.subarray(0, end));
      if (scan.state === 'more') {
        if (decided !== undefined) throw new Error(`prefix ${end} asks for more after a shorter one was done`);
        if (end >= MAX_CLIENT_HELLO) throw new Error(`asks for more past ${MAX_CLIENT_HELLO} bytes`);
        continue;
      }
      if (scan.servername !== undefined && !NAME_RE.test(scan.servername))
        throw new Error(`returned a name that is not a host name: ${JSON.stringify(scan.servername)}`);
      if (decided !== undefined && decided.servername !== scan.servername) throw new Error(`prefix ${end} found another name than a shorter one`);
      decided ??= { servername: scan.servername };
    }
  },
};
