// A real TCP backend for the L4 end-to-end tests, run as its own process so a test can kill it:
//   node tcp-backend-server.mjs NAME [--proxy v1|v2] [--tls CERT KEY]
// It prints `listening PORT`, then per connection: (with --proxy) reads and checks a PROXY
// protocol header with a parser of its own — not the data plane's — and closes the connection on
// anything malformed; (with --tls) terminates TLS. It answers `hello NAME from ADDR:PORT[ sni=NAME]\n`
// (the client address the header named, or the socket's) and then echoes every byte, half-close included;
// a line `bye` makes it end the connection, and `!reset` makes it reset the connection at once.
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

const [name, ...rest] = process.argv.slice(2);
const proxy = rest.includes('--proxy') ? rest[rest.indexOf('--proxy') + 1] : undefined;
const tlsAt = rest.indexOf('--tls');
const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** Independent PROXY header reading: returns { length, address, port } or undefined (malformed), or null (need more). */
function readHeader(buf) {
  if (proxy === 'v1') {
    const end = buf.indexOf('\r\n');
    if (end < 0) return buf.length > 107 ? undefined : null;
    const m = /^PROXY (TCP4|TCP6) (\S+) (\S+) (\d+) (\d+)$/.exec(buf.toString('latin1', 0, end));
    if (m === null) return undefined;
    const ok = m[1] === 'TCP4' ? isIPv4 : isIPv6;
    if (!ok(m[2]) || !ok(m[3]) || Number(m[4]) > 65535 || Number(m[5]) > 65535) return undefined;
    return { length: end + 2, address: m[2], port: Number(m[4]), dest: `${m[3]}:${m[5]}` };
  }
  if (buf.length < 16) return null;
  if (!buf.subarray(0, 12).equals(SIGNATURE) || buf[12] !== 0x21) return undefined;
  const length = 16 + buf.readUInt16BE(14);
  if (buf.length < length) return null;
  if (buf[13] === 0x11 && length >= 28) {
    const a = [...buf.subarray(16, 20)].join('.');
    return { length, address: a, port: buf.readUInt16BE(24), dest: `${[...buf.subarray(20, 24)].join('.')}:${buf.readUInt16BE(26)}` };
  }
  return undefined;
}

function serve(socket, sni) {
  socket.on('error', () => socket.destroy());
  const greet = (address, port, rest, dest) => {
    socket.write(`hello ${name} from ${address}:${port}${dest === undefined ? '' : ` to ${dest}`}${sni === undefined ? '' : ` sni=${sni}`}\n`);
    if (rest !== undefined && rest.length > 0) socket.write(rest);
    socket.pipe(socket);
    // A line `bye` ends the connection from this side (what openssl s_client waits for).
    socket.on('data', (d) => {
      if (d.includes('!reset')) return socket.resetAndDestroy();
      if (d.includes('bye\n')) {
        socket.unpipe(socket);
        socket.end();
      }
    });
  };
  if (proxy === undefined) return greet(socket.remoteAddress, socket.remotePort);
  let buf = Buffer.alloc(0);
  const onData = (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    const header = readHeader(buf);
    if (header === null) return;
    socket.off('data', onData);
    socket.pause();
    if (header === undefined) {
      socket.end('bad proxy header\n');
      return;
    }
    greet(header.address, header.port, buf.subarray(header.length), header.dest);
  };
  socket.on('data', onData);
}

const server =
  tlsAt >= 0
    ? createTlsServer({ cert: readFileSync(rest[tlsAt + 1]), key: readFileSync(rest[tlsAt + 2]), allowHalfOpen: true }, (s) =>
        serve(s, s.servername || undefined),
      )
    : createServer({ allowHalfOpen: true }, (s) => serve(s, undefined));
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
