// Multi-core scaling: the same data plane with --workers 1 and --workers 2 (and more with
// --max), behind the same nginx backends, measured with wrk one after the other in one run.
// On a 2-core machine wrk and nginx share the cores with the workers, so the curve flattens
// early: read it as "what a second worker buys here", not as a per-core figure.
// With --access-log PATH every worker also writes a JSON line per request (to /dev/null, say):
// work only the data plane does, which makes it the bottleneck even on two cores.
//   node bench/scaling.mjs [--seconds 8] [--connections 64] [--max 2] [--access-log off]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machine, ROOT, sleep, startProject, stopAll, waitOk, wrk } from './lib.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    max: { type: 'string', default: '2' },
    'access-log': { type: 'string', default: 'off' },
  },
});
const nginx = spawn('nginx', ['-c', join(ROOT, 'bench/conf/backend-nginx.conf')], { stdio: 'inherit' });
process.on('exit', () => nginx.kill('SIGTERM'));
await waitOk('http://127.0.0.1:9121/');
const rows = [];
for (let w = 1; w <= Number(values.max); w++) {
  const project = await startProject({ workers: w, backends: [9121, 9122, 9123], accessLog: values['access-log'] });
  await wrk('http://127.0.0.1:8090/', { connections: Number(values.connections), seconds: 2 });
  const r = await wrk('http://127.0.0.1:8090/', { connections: Number(values.connections), seconds: Number(values.seconds) });
  rows.push({ workers: w, ...r });
  await project.stop();
  await sleep(500);
}
nginx.kill('SIGTERM');
stopAll();
console.log(`scaling: ${machine()}, wrk -t1 -c${values.connections} -d${values.seconds}s, 16-byte responses from nginx, access log ${values['access-log']}`);
console.log('  workers   requests/s   vs 1 worker   p50        p99');
for (const r of rows)
  console.log(
    `  ${String(r.workers).padEnd(9)} ${r.rps.toFixed(0).padStart(10)}   ${(r.rps / rows[0].rps).toFixed(2).padStart(8)}x   ${String(r.p50).padEnd(10)} ${r.p99}${r.errors ? `  ${r.errors}` : ''}`,
  );
