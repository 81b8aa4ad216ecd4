/**
 * A behavioural self-test of node's HTTP parser binding (llhttp.ts), run once when the data plane
 * starts: canned requests and responses that exercise every part of the calling convention the
 * built-in server and upstream client rely on — more than 32 header pairs (handed over early),
 * a chunked body with trailers, a large body split across reads (handed over as copies), a head answered NO_BODY and
 * STOP (and the next message parsed with no reset), and an error with its position. A shape probe would pass a binding whose behaviour
 * changed; this fails it, and the data plane then serves with node:http and undici
 * (proxy-server.ts, upstream-pools.ts), saying so in one log line.
 */
import { AFTER_HEAD, bindingProblem, Http1Parser, type Http1Events, type ParserKind } from './llhttp.js';

interface Message {
  head: { major: number; minor: number; headers: string[]; method: string; url: string; status: number; statusText: string; keepAlive: boolean };
  body: Buffer[];
  complete: boolean;
}

/** Records what the parser reports; heads answer `afterHead(i)` for message i. */
class Recorder implements Http1Events {
  readonly messages: Message[] = [];
  constructor(private readonly afterHead: (i: number) => number = () => AFTER_HEAD.BODY) {}
  onMessageBegin(): void {
    this.messages.push({
      head: { major: 0, minor: 0, headers: [], method: '', url: '', status: 0, statusText: '', keepAlive: false },
      body: [],
      complete: false,
    });
  }
  onHead(
    major: number,
    minor: number,
    headers: string[],
    method: string,
    url: string,
    status: number,
    statusText: string,
    _upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const m = this.messages.at(-1)!;
    m.head = { major, minor, headers, method, url, status, statusText, keepAlive };
    return this.afterHead(this.messages.length - 1);
  }
  onBody(chunk: Buffer): void {
    this.messages.at(-1)!.body.push(chunk);
  }
  onMessageComplete(): void {
    this.messages.at(-1)!.complete = true;
  }
}

const MANY = 40;
const manyHeaders = Array.from({ length: MANY }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
const expectedMany = Array.from({ length: MANY }, (_, i) => [`X-H${i}`, `v${i}`]).flat();
const large = Buffer.alloc(200_000, 0x61);

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Feeds `input` in slices of `step` bytes; throws on a parse error. */
function feed(parser: Http1Parser, input: Buffer, step: number): void {
  for (let at = 0; at < input.length; at += step) {
    const slice = input.subarray(at, Math.min(input.length, at + step));
    const r = parser.execute(slice);
    if (typeof r !== 'number') throw new Error(`unexpected parse error ${r.code}`);
    check(r === slice.length, `parsed ${r} of ${slice.length} bytes`);
  }
}

function run(kind: ParserKind, recorder: Recorder): Http1Parser {
  return new Http1Parser(kind, recorder, 65_536);
}

function requests(): void {
  const rec = new Recorder();
  const parser = run('request', rec);
  const input = Buffer.concat([
    Buffer.from(
      `POST /first?q=1 HTTP/1.1\r\nHost: a\r\n${manyHeaders}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`,
      'latin1',
    ),
    Buffer.from(`PUT /second HTTP/1.1\r\nHost: b\r\nContent-Length: ${large.length}\r\n\r\n`, 'latin1'),
    large,
  ]);
  // Split at awkward places: the early-handover path must join heads and targets across reads.
  feed(parser, input, 7_001);
  parser.close();
  check(rec.messages.length === 2, `${rec.messages.length} requests parsed, not 2`);
  const [a, b] = rec.messages as [Message, Message];
  check(a.head.method === 'POST' && a.head.url === '/first?q=1' && a.head.major === 1 && a.head.minor === 1, 'first request line');
  check(sameList(a.head.headers, ['Host', 'a', ...expectedMany, 'Transfer-Encoding', 'chunked']), 'first request headers (more than 32, in order)');
  check(Buffer.concat(a.body).toString('latin1') === 'hello world' && a.complete, 'chunked body with trailers');
  check(
    b.head.method === 'PUT' && b.head.url === '/second' && sameList(b.head.headers, ['Host', 'b', 'Content-Length', String(large.length)]),
    'second request head (trailers must not leak into it)',
  );
  check(Buffer.concat(b.body).equals(large) && b.complete, 'large body split across reads');
  // Client reads share one buffer, used again for the next read (runtime/socket-reads.ts).
  check(
    [...a.body, ...b.body].every((chunk) => chunk.buffer !== input.buffer),
    'body chunks are copies, not views of the bytes read',
  );

  const bad = new Http1Parser('request', new Recorder());
  const r = bad.execute(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'latin1'));
  bad.close();
  check(typeof r !== 'number' && r.code.startsWith('HPE_') && typeof r.bytesParsed === 'number', 'a malformed request is an error with its code and position');
}

function responses(): void {
  // Message 1 answers a HEAD (no body), message 2 stops after its head.
  const rec = new Recorder((i) => (i === 1 ? AFTER_HEAD.NO_BODY : i === 2 ? AFTER_HEAD.STOP : AFTER_HEAD.BODY));
  const parser = run('response', rec);
  const first = Buffer.from(`HTTP/1.1 200 OK\r\n${manyHeaders}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 3\r\n\r\n`, 'latin1');
  const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'latin1');
  const stop = Buffer.from(`HTTP/1.1 200 Fine\r\nContent-Length: ${large.length}\r\n\r\n`, 'latin1');
  feed(parser, Buffer.concat([first, head]), 5_000);
  const r = parser.execute(Buffer.concat([stop, large.subarray(0, 10)]));
  check(r === stop.length, 'a head answered STOP stops the parser right after it');
  // The body after a STOP is read past the parser; the next response parses with no reset.
  feed(parser, Buffer.from('HTTP/1.0 500 Broken\r\n\r\nuntil close', 'latin1'), 1_000);
  check(parser.finish() === undefined, 'finish() completes a body delimited by the close');
  parser.close();
  check(rec.messages.length === 4, `${rec.messages.length} responses parsed, not 4`);
  const [a, b, c, d] = rec.messages as [Message, Message, Message, Message];
  check(
    a.head.status === 200 && a.head.statusText === 'OK' && sameList(a.head.headers, [...expectedMany, 'Transfer-Encoding', 'chunked']),
    'first response head',
  );
  check(Buffer.concat(a.body).toString('latin1') === 'abc' && a.complete, 'chunked response whose trailers carry a Content-Length');
  check(b.head.status === 200 && b.body.length === 0 && b.complete, 'a head answered NO_BODY');
  check(c.head.status === 200 && c.head.statusText === 'Fine' && c.body.length === 0, 'the head before STOP');
  check(
    d.head.status === 500 && d.head.minor === 0 && !d.head.keepAlive && Buffer.concat(d.body).toString('latin1') === 'until close' && d.complete,
    'body delimited by the close',
  );
}

export type SelfTestResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

function selfTest(): SelfTestResult {
  if (bindingProblem !== undefined) return { ok: false, reason: bindingProblem };
  try {
    requests();
    responses();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `self-test failed: ${(err as Error).message}` };
  }
}

let result: SelfTestResult | undefined;

/** The self-test's verdict, run on first call (a few milliseconds) and remembered. */
export function nativeHttp1(): SelfTestResult {
  result ??= selfTest();
  return result;
}
