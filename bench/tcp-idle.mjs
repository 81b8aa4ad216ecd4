// Memory per idle TCP connection through a proxy: the resident memory of the proxy's processes
// (`--pids`) before and after opening `--connections` connections through `--port` that then send
// nothing. Prints `bytes-per-connection rss-before-kB rss-after-kB`. Not a test: run by bench/tcp.sh.
//   node bench/tcp-idle.mjs --port 18501 --pids 123,456 [--connections 5000]
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, pids: { type: 'string' }, connections: { type: 'string', default: '5000' } } });
const pids = values.pids.split(',').filter(Boolean);
const count = Number(values.connections);
const rssKb = () => pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0), 0);
const settle = () => new Promise((r) => setTimeout(r, 1500));

await settle();
const before = rssKb();
const sockets = [];
for (let i = 0; i < count; i += 500) {
  const batch = await Promise.all(
    Array.from(
      { length: Math.min(500, count - i) },
      () =>
        new Promise((resolve, reject) => {
          const s = connect(Number(values.port), '127.0.0.1', () => resolve(s));
          s.on('error', reject);
        }),
    ),
  );
  sockets.push(...batch);
}
// The proxy has accepted every one and connected it to a backend (a data plane does both at once).
await settle();
const after = rssKb();
for (const s of sockets) s.destroy();
console.log(`${Math.round(((after - before) * 1024) / count)} ${before} ${after}`);
