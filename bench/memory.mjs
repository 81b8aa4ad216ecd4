// Streaming memory: 64 clients (wrk -c64) download 1 MiB bodies through the data plane in a loop
// for 30 s; prints the data plane's RSS before, at its peak and at the end. Target (issue 3):
// growth < 50 MB.   node bench/memory.mjs [--seconds 30] [--workers 1]
import { parseArgs } from 'node:util';
import { dataPlaneRssMb, machine, sleep, startBackend, startProject, stopAll, wrk } from './lib.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '30' }, workers: { type: 'string', default: '1' }, connections: { type: 'string', default: '64' } } });
const seconds = Number(values.seconds);
await startBackend(9111, 1 << 20);
const project = await startProject({ workers: Number(values.workers), backends: [9111] });
await sleep(1000);
const before = dataPlaneRssMb();
let peak = before;
let ticks = 0;
// RSS every 250 ms; with LB_BENCH_VERBOSE=1 also the heap and external memory once a second.
const sampler = setInterval(() => {
  peak = Math.max(peak, dataPlaneRssMb());
  if (process.env.LB_BENCH_VERBOSE && ++ticks % 4 === 0) fetch('http://127.0.0.1:29901/metrics').then((r) => r.text()).then((t) => {
    const g = (n) => (Number(new RegExp(`^${n} (\\S+)`, 'm').exec(t)?.[1] ?? 0) / 1048576).toFixed(0);
    console.error(`rss ${dataPlaneRssMb().toFixed(0)} heapUsed ${g('nodejs_heap_size_used_bytes')} heapTotal ${g('nodejs_heap_size_total_bytes')} external ${g('nodejs_external_memory_bytes')}`);
  }, () => {});
}, 250);
const r = await wrk('http://127.0.0.1:8090/', { connections: Number(values.connections), seconds });
const requests = r.requests;
const errors = r.errors;
clearInterval(sampler);
const after = dataPlaneRssMb();
await project.stop();
stopAll();
const mb = (x) => x.toFixed(1);
console.log(`memory: ${machine()}, workers ${values.workers}, ${values.connections} clients x 1 MiB bodies for ${seconds} s (${Math.round(requests)} responses, ${(requests / seconds).toFixed(0)}/s, ${(requests / seconds / 1024).toFixed(2)} GiB/s)${errors ? ` errors: ${errors}` : ''}`);
console.log(`  data plane RSS: before ${mb(before)} MB, peak ${mb(peak)} MB, end ${mb(after)} MB; growth at peak ${mb(peak - before)} MB (target < 50 MB)`);
