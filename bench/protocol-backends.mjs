// Backends for bench/protocols.sh, in one process: three gRPC servers (127.0.0.1:9351-9353) that
// answer /bench.Echo/Unary with the request message and grpc-status 0 in trailers — node:http2
// speaking gRPC's framing directly, lighter than @grpc/grpc-js so the proxies, not the backends,
// are what is measured — and three WebSocket echo servers (the ws package, :9361-9363).
// Not a test; stopped with SIGTERM.
import http2 from 'node:http2';
import { WebSocketServer } from 'ws';

for (const port of [9351, 9352, 9353]) {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000, initialWindowSize: 1 << 20 } });
  server.on('stream', (stream) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      // The client may have cancelled the call (a load generator stopping).
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat(chunks));
    });
    stream.on('error', () => {});
  });
  server.on('sessionError', () => {});
  server.listen(port, '127.0.0.1');
}
for (const port of [9361, 9362, 9363]) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
}
process.on('SIGTERM', () => process.exit(0));
