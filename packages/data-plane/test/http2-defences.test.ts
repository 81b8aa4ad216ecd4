// Issue 12, point 6: HTTP/2 defences of a listener, with a raw client that writes whatever frames
// a test builds. Downgrade smuggling (upper case or CR/LF in names, connection-specific fields,
// TE other than trailers, a content-length the DATA frames disagree with) is refused before a
// backend sees it; past the stream limit streams are refused; an oversized header list is refused;
// rapid-reset and CONTINUATION floods cut the attacking connection while another client's
// requests go on being answered.
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '@lb/shared';
import type { ProxyServerOptions } from '../src/proxy/proxy-server.js';
import { FLAG, FRAME, frame, get, headerBlock, RawH2, rstStream } from './h2-frames.js';
import { type Backend, snapshot, startBackend, startTestNode, type TestNode, waitFor } from './helpers.js';
import { freePort } from '../../../test/support/wait.js';

let backend: Backend;
let t: TestNode;
let port = 0;
/** Requests the backend received whole (their body read to the end). */
let completed = 0;

beforeAll(async () => {
  backend = await startBackend('b1', (req, res) => {
    req.resume();
    req.on('end', () => {
      completed++;
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? '0');
      setTimeout(() => res.end('ok'), ms);
    });
  });
  t = await startTestNode();
  port = await freePort();
  const config: Config = {
    pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b1', address: backend.address, weight: 1, state: 'active' }] } },
    routes: { web: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } },
    listeners: { plain: { port, protocol: 'http', h2c: true } },
  } as Config;
  const outcome = await t.node.applier.onConfig(snapshot(1, config));
  expect(outcome).toEqual({ ok: true });
});

afterAll(async () => {
  await t.node.stop();
  await backend.close();
});

const PROTOCOL_ERROR = 1;
const REFUSED_STREAM = 7;

/** The request pseudo-headers of a POST for `path`. */
const post = (path: string): Array<[string, string]> => [[':method', 'POST'], ...get(path).slice(1)];

/** Sends one request on a fresh connection; resolves with what came back for it once the server answered, reset it, or closed. */
async function attempt(build: (raw: RawH2) => void): Promise<{ answered: boolean; reset: number | undefined; goaway: number | undefined }> {
  const raw = await RawH2.connect(port);
  build(raw);
  await waitFor(() => raw.answered(1) || raw.resetCode(1) !== undefined || raw.goawayCode() !== undefined || raw.closed, 3000, 'an answer');
  const out = { answered: raw.answered(1), reset: raw.resetCode(1), goaway: raw.goawayCode() };
  raw.destroy();
  return out;
}

/** A well-behaved client that keeps sending requests while `during` runs; every one must be answered. */
async function bystander<T>(during: () => Promise<T>): Promise<{ result: T; answered: number; failed: number }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  let answered = 0;
  let failed = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise<void>((resolve) => {
        const s = session.request({ ':path': '/bystander' });
        s.on('response', (h) => (Number(h[':status']) === 200 ? answered++ : failed++));
        s.on('error', () => failed++);
        s.resume();
        s.on('close', () => resolve());
      });
    }
  })();
  try {
    const result = await during();
    running = false;
    await loop;
    return { result, answered, failed };
  } finally {
    running = false;
    session.destroy();
  }
}

describe('HTTP/2 downgrade smuggling (h2 → h1)', () => {
  it('answers a well-formed request, so the refusals below are about the fields', async () => {
    const ok = await attempt((raw) => raw.request(1, get('/fine')));
    expect(ok.answered).toBe(true);
  });

  it('never passes on CR/LF in a name or value: node has nghttp2 drop such a field, so no backend sees it', async () => {
    const before = backend.seen.length;
    await attempt((raw) => raw.request(1, [...get('/crlf-name'), ['x-a\r\nx-b', 'c']]));
    await attempt((raw) => raw.request(1, [...get('/crlf-value'), ['x-v', 'b\r\ntransfer-encoding: chunked']]));
    for (const seen of backend.seen.slice(before)) {
      expect(seen.rawHeaders.join('\n')).not.toMatch(/x-a|x-b|x-v|transfer-encoding/i);
    }
  });

  const cases: Array<[string, Array<[string, string]>]> = [
    ['an upper-case name', [['X-Upper', 'a']]],
    ['Connection', [['connection', 'keep-alive']]],
    ['Transfer-Encoding', [['transfer-encoding', 'chunked']]],
    ['Keep-Alive', [['keep-alive', 'timeout=5']]],
    ['Upgrade', [['upgrade', 'websocket']]],
    ['TE other than trailers', [['te', 'gzip']]],
  ];
  for (const [what, fields] of cases) {
    it(`refuses ${what} before any backend sees it`, async () => {
      const before = backend.seen.length;
      const out = await attempt((raw) => raw.request(1, [...get('/smuggle'), ...fields]));
      expect(out.answered).toBe(false);
      expect(out.reset ?? out.goaway).toBe(PROTOCOL_ERROR);
      expect(backend.seen.length).toBe(before);
    });
  }

  it('refuses a body that disagrees with its content-length: the backend never gets a whole request', async () => {
    const before = completed;
    const out = await attempt((raw) => {
      raw.request(1, [[':method', 'POST'], ...get('/len').slice(1), ['content-length', '10']], false);
      raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('abc')));
    });
    expect(out.reset ?? out.goaway).toBe(PROTOCOL_ERROR);
    // Give a backend that did get it time to see the end it must not see.
    await new Promise((r) => setTimeout(r, 200));
    expect(completed).toBe(before);
  });
});

describe('HTTP/2 limits and floods', () => {
  it('refuses streams past max concurrent streams (128) with REFUSED_STREAM; those within are answered', async () => {
    const raw = await RawH2.connect(port);
    try {
      for (let i = 0; i < 140; i++) raw.request(1 + 2 * i, get('/hold?ms=300'));
      const last = 1 + 2 * 139;
      await waitFor(() => raw.resetCode(last) !== undefined || raw.answered(last), 3000, 'the last stream settled');
      expect(raw.resetCode(last)).toBe(REFUSED_STREAM);
      await waitFor(() => raw.answered(1), 3000, 'the first stream answered');
    } finally {
      raw.destroy();
    }
  });

  it('refuses a header list larger than the limit (16 KiB)', async () => {
    const before = backend.seen.length;
    const out = await attempt((raw) => raw.request(1, [...get('/big'), ['x-big', 'a'.repeat(20_000)]]));
    expect(out.answered).toBe(false);
    expect(out.reset !== undefined || out.goaway !== undefined).toBe(true);
    expect(backend.seen.length).toBe(before);
  });

  it('cuts a rapid-reset flood (CVE-2023-44487) with GOAWAY; another client is answered throughout', async () => {
    const before = backend.seen.length;
    const { result, answered, failed } = await bystander(async () => {
      const raw = await RawH2.connect(port);
      for (let i = 0; i < 5000 && !raw.closed; i++) {
        const id = 1 + 2 * i;
        raw.write(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(get('/reset'))), rstStream(id)]));
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      await Promise.race([raw.whenClosed(), waitFor(() => raw.goawayCode() !== undefined, 5000, 'GOAWAY')]);
      const cut = { goaway: raw.goawayCode(), closed: raw.closed, streams: backend.seen.length - before };
      raw.destroy();
      return cut;
    });
    // GOAWAY (nghttp2's reset rate limit: the session fails with an error code) or the connection closed.
    expect(result.goaway !== undefined || result.closed).toBe(true);
    // Cut well before its 5,000 streams all became backend requests.
    expect(result.streams).toBeLessThan(2500);
    expect(failed).toBe(0);
    expect(answered).toBeGreaterThan(0);
  });

  it('cuts a CONTINUATION flood (CVE-2024-27316); another client is answered throughout', async () => {
    const { result, answered, failed } = await bystander(async () => {
      const raw = await RawH2.connect(port);
      raw.write(frame(FRAME.HEADERS, 0, 1, headerBlock(get('/cont'))));
      const piece = headerBlock([['x-pad', 'p'.repeat(100)]]);
      let sent = 0;
      for (; sent < 20_000 && !raw.closed && raw.goawayCode() === undefined; sent++) {
        raw.write(frame(FRAME.CONTINUATION, 0, 1, piece));
        if (sent % 200 === 199) await new Promise((r) => setImmediate(r));
      }
      await Promise.race([raw.whenClosed(), waitFor(() => raw.goawayCode() !== undefined, 5000, 'GOAWAY')]);
      const cut = { sent, goaway: raw.goawayCode(), closed: raw.closed, answered: raw.answered(1) };
      raw.destroy();
      return cut;
    });
    // Cut with GOAWAY (nghttp2 bounds the CONTINUATION frames of one header block) or by closing
    // the connection, long before the attacker's 20,000 frames (2 MB of header block) went in.
    expect(result.goaway !== undefined || result.closed).toBe(true);
    expect(result.sent).toBeLessThan(20_000);
    expect(result.answered).toBe(false);
    expect(failed).toBe(0);
    expect(answered).toBeGreaterThan(0);
  });
});

/**
 * A node of its own, with `proxy` settings and one h2c listener whose every request goes to the
 * backend at `address`; `run` gets the listener's port. For the tests of limits the shared node keeps
 * at their defaults.
 */
async function withNode(proxy: ProxyServerOptions, address: string, run: (port: number, node: TestNode) => Promise<void>): Promise<void> {
  const quick = await startTestNode({ proxy });
  const quickPort = await freePort();
  try {
    const config = {
      pools: { web: { algorithm: 'round_robin', backends: [{ id: 'b1', address, weight: 1, state: 'active' }] } },
      routes: { web: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } },
      listeners: { plain: { port: quickPort, protocol: 'http', h2c: true } },
    };
    expect(await quick.node.applier.onConfig(snapshot(1, config))).toEqual({ ok: true });
    await run(quickPort, quick);
  } finally {
    await quick.node.stop();
  }
}

describe('HTTP/2 stream silence', () => {
  it('resets a stream whose request body trickles past the request timeout, so it cannot hold a backend', async () => {
    await withNode({ requestTimeoutMs: 400, headersTimeoutMs: 400 }, backend.address, async (quickPort) => {
      const raw = await RawH2.connect(quickPort);
      try {
        // A POST whose body never ends.
        raw.request(1, post('/trickle'), false);
        raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('a')));
        await waitFor(() => raw.resetCode(1) !== undefined, 3000, 'the stream reset');
        expect(raw.resetCode(1)).toBe(8 /* CANCEL */);
        // The connection itself stays usable.
        raw.request(3, get('/after'));
        await waitFor(() => raw.answered(3), 3000, 'a later stream answered');
      } finally {
        raw.destroy();
      }
    });
  });

  it('keeps a stream whose request body keeps coming, past the request timeout in total', async () => {
    await withNode({ requestTimeoutMs: 400, headersTimeoutMs: 400 }, backend.address, async (quickPort) => {
      const raw = await RawH2.connect(quickPort);
      try {
        raw.request(1, post('/slow-but-steady'), false);
        // A byte every 100 ms for 1.2 s: never silent for the 400 ms limit, three times it in total.
        for (let i = 0; i < 12; i++) {
          raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('a')));
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('z')));
        await waitFor(() => raw.answered(1) || raw.resetCode(1) !== undefined, 3000, 'an answer or a reset');
        expect(raw.resetCode(1)).toBeUndefined();
        expect(raw.answered(1)).toBe(true);
      } finally {
        raw.destroy();
      }
    });
  });
});

/** A backend that takes request bodies and never answers, counting the requests that arrive and those cut before their end. */
async function uploadSink(): Promise<{ backend: Backend; arrived: () => number; cut: () => number }> {
  let arrived = 0;
  let cut = 0;
  const sink = await startBackend('uploads', (req) => {
    arrived++;
    req.resume();
    req.on('close', () => {
      if (!req.complete) cut++;
    });
  });
  return { backend: sink, arrived: () => arrived, cut: () => cut };
}

/**
 * A POST whose body never ends, through a node with `proxy` options to an upload sink; after
 * `then` has done its part, the proxy must close the connection and cancel the backend's request.
 */
async function uploadThenCut(proxy: ProxyServerOptions, then: (raw: RawH2) => void | Promise<void>): Promise<void> {
  const sink = await uploadSink();
  try {
    await withNode(proxy, sink.backend.address, async (quickPort) => {
      const raw = await RawH2.connect(quickPort);
      try {
        raw.request(1, post('/upload'), false);
        raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('part of a body')));
        await waitFor(() => sink.arrived() === 1, 3000, 'the request at the backend');
        await then(raw);
        await waitFor(() => raw.closed, 3000, 'the proxy closing the connection');
        await waitFor(() => sink.cut() === 1, 3000, "the backend's request cancelled");
      } finally {
        raw.destroy();
      }
    });
  } finally {
    await sink.backend.close();
  }
}

describe('HTTP/2 clients that half-close', () => {
  it('end their session, and the backend requests of their unfinished streams are cancelled', async () => {
    await uploadThenCut({ requestTimeoutMs: 60_000 }, (raw) => {
      // FIN: the client can send nothing more, so the body can never end.
      raw.socket.end();
    });
  });
});

describe('HTTP/2 idle connections', () => {
  it('closes a connection with no stream open for the keep-alive timeout, and not one with a stream in flight', async () => {
    await withNode({ keepAliveTimeoutMs: 300, requestTimeoutMs: 5_000 }, backend.address, async (quickPort) => {
      const idle = await RawH2.connect(quickPort);
      const busy = await RawH2.connect(quickPort);
      try {
        idle.request(1, get('/once'));
        await waitFor(() => idle.answered(1), 3000, 'the first answer');
        // A request body that keeps its stream open (silent, but under the 5 s request timeout).
        busy.request(1, post('/open'), false);
        await waitFor(() => idle.goawayCode() !== undefined, 3000, 'GOAWAY on the idle connection');
        expect(idle.goawayCode()).toBe(0 /* NO_ERROR */);
        await idle.whenClosed();
        expect(busy.goawayCode()).toBeUndefined();
      } finally {
        idle.destroy();
        busy.destroy();
      }
    });
  });
});

describe('HTTP/2 connections that stop answering', () => {
  it('closes a session nghttp2 ended with GOAWAY (a HEADERS where a CONTINUATION must come), cancelling its backend requests', async () => {
    // Node 20 neither closes such a session nor reads the client's FIN after it; the liveness PING does.
    await uploadThenCut({ requestTimeoutMs: 60_000, http2PingIntervalMs: 300 }, async (raw) => {
      raw.write(frame(FRAME.HEADERS, 0, 3, headerBlock(get('/a'))));
      raw.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 5, headerBlock(get('/b'))));
      await waitFor(() => raw.goawayCode() !== undefined, 3000, 'GOAWAY');
      expect(raw.goawayCode()).toBe(PROTOCOL_ERROR);
    });
  });

  it('pings a silent connection: one that answers keeps its stream, one that does not is closed', async () => {
    const sink = await uploadSink();
    try {
      await withNode({ requestTimeoutMs: 60_000, http2PingIntervalMs: 200 }, sink.backend.address, async (quickPort) => {
        const answering = await RawH2.connect(quickPort);
        const mute = await RawH2.connect(quickPort);
        mute.answerPings = false;
        try {
          answering.request(1, post('/answering'), false);
          mute.request(1, post('/mute'), false);
          await waitFor(() => sink.arrived() === 2, 3000, 'both requests at the backend');
          await waitFor(() => mute.closed, 3000, 'the proxy closing the connection that does not answer');
          await waitFor(() => sink.cut() === 1, 3000, "the mute client's backend request cancelled");
          // The answering one was pinged too (silent for longer than the interval), and is still open.
          expect(answering.frames.some((f) => f.type === FRAME.PING)).toBe(true);
          expect(answering.closed).toBe(false);
          expect(answering.goawayCode()).toBeUndefined();
          expect(sink.cut()).toBe(1);
        } finally {
          answering.destroy();
          mute.destroy();
        }
      });
    } finally {
      await sink.backend.close();
    }
  });
});

describe('HTTP/2 clients that would abort a Node 20 process (nghttp2 1.61)', () => {
  const goaway = (code = 0): Buffer => frame(FRAME.GOAWAY, 0, 0, Buffer.from([0, 0, 0, 0, 0, 0, 0, code]));
  /** A WINDOW_UPDATE one byte too long: a connection error nghttp2 finds in the frame header. */
  const wrongLength = (stream: number): Buffer => frame(FRAME.WINDOW_UPDATE, 0, stream, Buffer.from([0, 0, 0, 1, 0]));

  it('survives GOAWAY, a request and a frame of the wrong length in one read; other clients are answered', async () => {
    // Node's own close() after the client's GOAWAY destroyed the session inside nghttp2's HEADERS
    // callback, and the next frame's length error then tripped nghttp2's assert: SIGABRT.
    const { result, failed } = await bystander(async () => {
      const raw = await RawH2.connect(port);
      try {
        raw.write(Buffer.concat([goaway(), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(get('/a'))), wrongLength(1)]));
        await waitFor(() => raw.goawayCode() !== undefined, 3000, 'GOAWAY');
        return raw.goawayCode();
      } finally {
        raw.destroy();
      }
    });
    expect(result === 0 /* ours, after the client's */ || result === 6 /* FRAME_SIZE_ERROR */).toBe(true);
    expect(failed).toBe(0);
    expect((await attempt((raw) => raw.request(1, get('/after')))).answered).toBe(true);
  });

  it('ends a draining session whose client resets its last stream and then sends a new request and a frame of the wrong length', async () => {
    await withNode({}, backend.address, async (quickPort, quick) => {
      const raw = await RawH2.connect(quickPort);
      try {
        const before = completed;
        raw.request(1, get('/held?ms=60000'));
        await waitFor(() => completed > before, 3000, 'the request at the backend');
        const drained = quick.node.stop();
        await waitFor(() => raw.goawayCode() !== undefined, 3000, 'the drain GOAWAY');
        raw.write(Buffer.concat([rstStream(1), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, headerBlock(get('/b'))), wrongLength(0)]));
        await raw.whenClosed();
        await drained;
      } finally {
        raw.destroy();
      }
    });
  });

  it("answers a request whose client sent GOAWAY(NO_ERROR) right after it: the client's streams go on", async () => {
    const raw = await RawH2.connect(port);
    try {
      raw.request(1, get('/goaway-after?ms=50'));
      raw.write(goaway());
      await waitFor(() => raw.answered(1), 3000, 'the answer');
      await raw.whenClosed();
      expect(raw.resetCode(1)).toBeUndefined();
    } finally {
      raw.destroy();
    }
  });
});
