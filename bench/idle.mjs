// Idle cost: opens 10,000 keep-alive client connections to the data plane, sends one request on
// each, reads the answer and leaves the connection open and idle; prints the data plane's RSS
// before and after. Target (issue 3): 10,000 idle connections cost < 150 MB RSS.
//   node bench/idle.mjs [--connections 10000] [--workers 1]
// Needs ~connections+100 file descriptors in this process and in the data plane: run-all.sh
// raises `ulimit -n`; this script says so when the limit is too low.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { dataPlaneRssMb, machine, sleep, startBackend, startProject, stopAll } from './lib.mjs';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, workers: { type: 'string', default: '1' } } });
const total = Number(values.connections);
const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
if (limit < total + 100) {
  console.error(`idle: needs ${total + 100} open files, the limit is ${limit}: run \`ulimit -n ${total + 1000}\` first (bench/run-all.sh does)`);
  process.exit(1);
}

await startBackend(9112, 16);
const project = await startProject({ workers: Number(values.workers), backends: [9112] });
await sleep(1000);
const before = dataPlaneRssMb();

const REQUEST = 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n';
const sockets = [];
function open() {
  return new Promise((resolve, reject) => {
    const s = connect(8090, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    s.once('error', reject);
    s.on('data', (d) => {
      got += d;
      // One small answer with Content-Length: done once the 16-byte body is in.
      if (got.includes('\r\n\r\n') && got.length >= got.indexOf('\r\n\r\n') + 4 + 16) {
        s.removeAllListeners('data');
        if (!got.startsWith('HTTP/1.1 200')) reject(new Error(got.slice(0, 80)));
        else resolve(s);
      }
    });
    s.write(REQUEST);
    sockets.push(s);
  });
}
const t0 = Date.now();
for (let i = 0; i < total; i += 200) await Promise.all(Array.from({ length: Math.min(200, total - i) }, open));
const openMs = Date.now() - t0;
await sleep(3000);
const after = dataPlaneRssMb();
const alive = sockets.filter((s) => !s.destroyed).length;
for (const s of sockets) s.destroy();
await project.stop();
stopAll();
console.log(`idle: ${machine()}, workers ${values.workers}, ${alive} idle keep-alive connections (opened in ${openMs} ms, one request each)`);
console.log(
  `  data plane RSS: before ${before.toFixed(1)} MB, with the connections ${after.toFixed(1)} MB; cost ${(after - before).toFixed(1)} MB = ${(((after - before) * 1024) / alive).toFixed(1)} KB per connection (target < 150 MB)`,
);
