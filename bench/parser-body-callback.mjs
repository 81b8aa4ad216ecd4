// What node's HTTP parser costs per small response, with its body callback and without: the
// upstream client reads Content-Length bodies past the parser (src/upstream/http1-connection.ts),
// because the body callback copies each piece into a new ArrayBuffer and enters JavaScript through
// a full MakeCallback. Both ways parse the same 16-byte nginx-style response a million times on one
// parser, with the callbacks the connection sets; "past the parser" stops after the head (as an
// upgrade would) and copies the body in JavaScript, as the connection does per response; the
// parser goes on with the next response as it is. A third way re-initializes it after each
// response, as the connection did until 2026-12-03.
// A benchmark, not a test: it prints figures and asserts nothing.
//   node bench/parser-body-callback.mjs [--rounds 4]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { machine } from './lib.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' } } });
const { HTTPParser } = createRequire(import.meta.url)('_http_common');
const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 03 Dec 2026 22:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: keep-alive\r\n\r\n0123456789abcdef',
);
const N = 1_000_000;

function parser(pastTheParser) {
  const p = new HTTPParser();
  p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
  const seen = { bytes: 0 };
  p[HTTPParser.kOnMessageBegin] = () => {};
  p[HTTPParser.kOnHeadersComplete] = (_major, _minor, headers) => {
    seen.bytes += headers.length;
    return pastTheParser ? 2 : 0;
  };
  p[HTTPParser.kOnBody] = (chunk) => {
    seen.bytes += chunk.length;
  };
  p[HTTPParser.kOnMessageComplete] = () => {};
  return { p, seen };
}

function run(pastTheParser, reinitialize = false) {
  const { p, seen } = parser(pastTheParser);
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const parsed = p.execute(RESPONSE);
    if (pastTheParser) seen.bytes += Buffer.from(RESPONSE.subarray(parsed)).length;
    if (reinitialize) p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
  }
  return Number(process.hrtime.bigint() - start) / N;
}

console.log(`parser per response: ${machine()}, ${values.rounds} rounds of ${N} responses each way`);
const through = [];
const past = [];
const reinitialized = [];
for (let r = 0; r < Number(values.rounds); r++) {
  through.push(run(false));
  past.push(run(true));
  reinitialized.push(run(true, true));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`  body through the parser: ${through.map((x) => x.toFixed(0)).join(' ')} ns (median ${median(through).toFixed(0)})`);
console.log(`  body past the parser (a copy): ${past.map((x) => x.toFixed(0)).join(' ')} ns (median ${median(past).toFixed(0)})`);
console.log(`  the same, re-initialized: ${reinitialized.map((x) => x.toFixed(0)).join(' ')} ns (median ${median(reinitialized).toFixed(0)})`);
