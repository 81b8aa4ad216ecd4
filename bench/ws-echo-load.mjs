// WebSocket echo load for bench/protocols.sh: C connections (ws package), each keeping W messages
// of B bytes in flight, for D seconds; prints echoed messages/s. Not a test.
//   node bench/ws-echo-load.mjs URL [--connections 32] [--window 8] [--bytes 64] [--seconds 8]
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '32' },
    window: { type: 'string', default: '8' },
    bytes: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '8' },
  },
});
const url = positionals[0];
const payload = Buffer.alloc(Number(values.bytes), 97);
const sockets = await Promise.all(
  Array.from(
    { length: Number(values.connections) },
    () =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      }),
  ),
);
let echoed = 0;
let counting = false;
let running = true;
for (const ws of sockets) {
  ws.on('message', () => {
    if (counting) echoed++;
    if (running) ws.send(payload);
  });
  for (let i = 0; i < Number(values.window); i++) ws.send(payload);
}
// One second of warm-up, then the measured window.
await new Promise((r) => setTimeout(r, 1000));
counting = true;
const started = performance.now();
await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
counting = false;
running = false;
const seconds = (performance.now() - started) / 1000;
console.log(`messages/s ${(echoed / seconds).toFixed(0)}`);
for (const ws of sockets) ws.terminate();
