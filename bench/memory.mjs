// Streaming memory: 64 clients (wrk -c64) download 1 MiB bodies through the data plane in a loop
// for 30 s; prints the data plane's RSS before, at its peak and at the end. Target (issue 3):
// growth < 50 MB.   node bench/memory.mjs [--seconds 30] [--workers 1]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dataPlanePids, dataPlaneRssMb, machine, sleep, startBackend, startProject, stopAll, wrk } from './lib.mjs';

// Where the resident memory of the data plane sits, from /proc/<pid>/smaps (MB, summed over its
// processes): `brk` is glibc's main malloc arena (Buffers' backing stores, i.e. V8's external
// memory, and other native allocations), `anon` the other anonymous mappings (the V8 heap's pages,
// thread stacks, other arenas), `file` the mapped binary and libraries.
function rssSplit() {
  const out = { brk: 0, anon: 0, file: 0 };
  for (const pid of dataPlanePids()) {
    let text;
    try {
      text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    } catch {
      continue;
    }
    let kind = 'anon';
    for (const line of text.split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
      if (head) kind = head[1] === '[heap]' ? 'brk' : head[1].startsWith('/') ? 'file' : 'anon';
      else if (line.startsWith('Rss:')) out[kind] += Number(/(\d+)/.exec(line)[1]) / 1024;
    }
  }
  return out;
}

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '30' }, workers: { type: 'string', default: '1' }, connections: { type: 'string', default: '64' } },
});
const seconds = Number(values.seconds);
await startBackend(9111, 1 << 20);
const project = await startProject({ workers: Number(values.workers), backends: [9111] });
await sleep(1000);
const before = dataPlaneRssMb();
const splitBefore = rssSplit();
let peak = before;
let splitAtPeak = splitBefore;
let ticks = 0;
// RSS every 250 ms (and where it sits at the peak); with LB_BENCH_VERBOSE=1 also, once a second,
// the V8 heap and external memory from the admin /metrics (prom-client's default metrics).
const sampler = setInterval(() => {
  const rss = dataPlaneRssMb();
  if (rss > peak) {
    peak = rss;
    splitAtPeak = rssSplit();
  }
  if (process.env.LB_BENCH_VERBOSE && ++ticks % 4 === 0)
    fetch('http://127.0.0.1:29901/metrics')
      .then((r) => r.text())
      .then(
        (t) => {
          const g = (n) => (Number(new RegExp(`^${n} (\\S+)`, 'm').exec(t)?.[1] ?? 0) / 1048576).toFixed(0);
          const split = rssSplit();
          console.error(
            `rss ${rss.toFixed(0)} (brk ${split.brk.toFixed(0)} anon ${split.anon.toFixed(0)}) heapUsed ${g('nodejs_heap_size_used_bytes')} heapTotal ${g('nodejs_heap_size_total_bytes')} external ${g('nodejs_external_memory_bytes')}`,
          );
        },
        () => {},
      );
}, 250);
const r = await wrk('http://127.0.0.1:8090/', { connections: Number(values.connections), seconds });
const requests = r.requests;
const errors = r.errors;
clearInterval(sampler);
const after = dataPlaneRssMb();
await project.stop();
stopAll();
const mb = (x) => x.toFixed(1);
console.log(
  `memory: ${machine()}, workers ${values.workers}, ${values.connections} clients x 1 MiB bodies for ${seconds} s (${Math.round(requests)} responses, ${(requests / seconds).toFixed(0)}/s, ${(requests / seconds / 1024).toFixed(2)} GiB/s)${errors ? ` errors: ${errors}` : ''}`,
);
console.log(`  data plane RSS: before ${mb(before)} MB, peak ${mb(peak)} MB, end ${mb(after)} MB; growth at peak ${mb(peak - before)} MB (target < 50 MB)`);
const d = (k) => `${mb(splitAtPeak[k])} MB (${splitAtPeak[k] >= splitBefore[k] ? '+' : ''}${mb(splitAtPeak[k] - splitBefore[k])})`;
console.log(`  at the peak: malloc main arena ${d('brk')}, other anonymous (V8 heap pages, stacks) ${d('anon')}, files ${d('file')}`);
