// A demo HTTP backend for the local stack: answers every request with its name, /health with 200.
import { createServer } from 'node:http';

const [name = 'demo', port = '9101'] = process.argv.slice(2);
const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  const body = `hello from ${name} (${req.method} ${req.url})\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
