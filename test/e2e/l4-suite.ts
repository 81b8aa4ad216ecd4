// Issue 13 end to end: tcp and tls-passthrough listeners written through the API reach a real data
// plane process, which pipes real clients to real TCP and TLS backends (each its own process):
// echo with half-close, hash stickiness per client address, a backend killed mid-stream, draining,
// routing on the SNI (openssl s_client, a ClientHello split across packets, none, garbage), PROXY
// protocol sent to backends that check it and accepted only from trusted sources, 1,000 concurrent
// connections through one node, metrics and access log lines. Run once per way the data plane
// moves L4 bytes (--l4-io): l4.test.ts (libuv handles, the default) and l4-sockets.test.ts (net.Socket).
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../support/http.js';
import { testPki } from '../support/pki.js';
import { Stack } from '../support/stack.js';
import { BlackHole, TcpBackend, TcpClient } from '../support/tcp-backends.js';
import { run } from '../support/tls-clients.js';
import { freePort, waitFor } from '../support/wait.js';

const pki = testPki();
const certA = pki.issue({ cn: 'a.example' });
const certWild = pki.issue({ cn: 'wild.example', sans: ['DNS:*.wild.example'] });
const certDefault = pki.issue({ cn: 'default.example' });
const accessLog = join(mkdtempSync(join(tmpdir(), 'lb-l4-')), 'access.log');

/** The whole L4 suite against a data plane started with `--l4-io io`. */
export function l4Suite(io: 'handles' | 'sockets'): void {
  let stack: Stack;
  let blackHole: BlackHole;
  const backends: Record<string, TcpBackend> = {};
  const ports: Record<string, number> = {};
  const HOST = '127.0.0.1';

  async function metrics(): Promise<string> {
    return (await fetch(`${stack.dps[0]!.adminUrl}/metrics`)).text();
  }

  /** The value of one series (name with its labels as printed), 0 when absent. */
  async function series(nameAndLabels: string): Promise<number> {
    const line = (await metrics()).split('\n').find((l) => l.startsWith(`${nameAndLabels} `));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  const open = (listener: string, from?: string) => TcpClient.open(HOST, ports[listener]!, from);

  /** One open session on each backend of a two-backend round-robin listener, by backend name. */
  async function sessionPerBackend(listener: string): Promise<Record<string, TcpClient>> {
    const sessions: Record<string, TcpClient> = {};
    for (let i = 0; i < 6 && Object.keys(sessions).length < 2; i++) {
      const c = await open(listener);
      const { backend } = await c.greeting();
      if (sessions[backend] === undefined) sessions[backend] = c;
      else c.destroy();
    }
    return sessions;
  }

  beforeAll(async () => {
    stack = await Stack.start({ dataPlanes: 1, backends: 0, nodeArgs: () => ['--access-log', accessLog, '--drain-timeout-ms', '1500', '--l4-io', io] });
    const starts: Array<[string, string[]]> = [
      ['e1', []],
      ['e2', []],
      ['e3', []],
      ['k1', []],
      ['k2', []],
      ['d1', []],
      ['d2', []],
      ['h1', []],
      ['p1', ['--proxy', 'v1']],
      ['p2', ['--proxy', 'v2']],
      ['ta', ['--tls', certA.chainFile, certA.keyFile]],
      ['tw', ['--tls', certWild.chainFile, certWild.keyFile]],
      ['td', ['--tls', certDefault.chainFile, certDefault.keyFile]],
    ];
    await Promise.all(starts.map(async ([name, args]) => (backends[name] = await TcpBackend.start(name, args))));
    for (const name of ['echo', 'kill', 'drain', 'health', 'limits', 'lc', 'slow', 'pp1', 'pp2', 'outer', 'tls']) ports[name] = await freePort();
    blackHole = await BlackHole.start();
    // Nothing listens there: the health check finds it down.
    const deadPort = await freePort();
    const pool = (algorithm: string, ids: string[], extra: Record<string, unknown> = {}) => ({
      algorithm,
      backends: ids.map((id) => ({ id, address: backends[id]!.address })),
      ...extra,
    });
    const route = (listener: string, pool: string, host?: string) => ({ listeners: [listener], pools: [{ pool }], ...(host ? { match: { host } } : {}) });
    await stack.applyConfig({
      pools: {
        echo: pool('ip_hash', ['e1', 'e2', 'e3']),
        kill: pool('round_robin', ['k1', 'k2'], { outlierDetection: { consecutiveGatewayErrors: 1, baseEjectionMs: 60_000, maxEjectionPercent: 50 } }),
        drain: pool('round_robin', ['d1', 'd2'], { drainTimeoutMs: 1000 }),
        health: {
          backends: [
            { id: 'h1', address: backends.h1!.address },
            { id: 'h2', address: `127.0.0.1:${deadPort}` },
          ],
          healthCheck: { type: 'tcp', intervalMs: 200, healthyThreshold: 1, unhealthyThreshold: 1 },
          panicThresholdPercent: 0,
        },
        limits: pool('round_robin', ['e1']),
        slow: {
          backends: [
            { id: 'hole', address: blackHole.address },
            { id: 'e1', address: backends.e1!.address },
          ],
          timeouts: { connectMs: 300 },
        },
        lc: pool('least_connections', ['e2', 'e3'], { circuitBreaker: { perBackend: { maxConnections: 2 } } }),
        'proxy-v1': pool('round_robin', ['p1'], { proxyProtocol: 'v1' }),
        'proxy-v2': pool('round_robin', ['p2'], { proxyProtocol: 'v2' }),
        'tls-a': pool('round_robin', ['ta']),
        'tls-wild': pool('round_robin', ['tw']),
        'tls-default': pool('round_robin', ['td']),
      },
      routes: {
        echo: route('echo', 'echo'),
        kill: route('kill', 'kill'),
        drain: route('drain', 'drain'),
        health: route('health', 'health'),
        limits: route('limits', 'limits'),
        lc: route('lc', 'lc'),
        slow: route('slow', 'slow'),
        pp1: route('pp1', 'proxy-v1'),
        pp2: route('pp2', 'proxy-v2'),
        outer: route('outer', 'proxy-v1'),
        'tls-a': route('tls', 'tls-a', 'a.example'),
        'tls-wild': route('tls', 'tls-wild', '*.wild.example'),
        'tls-default': route('tls', 'tls-default'),
      },
      listeners: {
        echo: { port: ports.echo, protocol: 'tcp' },
        kill: { port: ports.kill, protocol: 'tcp' },
        drain: { port: ports.drain, protocol: 'tcp' },
        health: { port: ports.health, protocol: 'tcp' },
        limits: { port: ports.limits, protocol: 'tcp', maxConnections: 2, idleTimeoutMs: 1000 },
        lc: { port: ports.lc, protocol: 'tcp' },
        slow: { port: ports.slow, protocol: 'tcp' },
        pp1: { port: ports.pp1, protocol: 'tcp' },
        pp2: { port: ports.pp2, protocol: 'tcp' },
        outer: { port: ports.outer, protocol: 'tcp', acceptProxyProtocol: { trustedSources: ['127.0.0.5/32', '::1'] }, helloTimeoutMs: 2000 },
        tls: { port: ports.tls, protocol: 'tls-passthrough', helloTimeoutMs: 500 },
      },
    });
  });

  afterAll(async () => {
    await stack?.stop();
    await Promise.allSettled([...Object.values(backends).map((b) => b.stop()), blackHole?.stop()]);
  });

  describe('tcp listeners (issue 13)', () => {
    it('pipe both ways with half-close: the backend sees the end of the request and still answers', async () => {
      const client = await open('echo');
      const { backend } = await client.greeting();
      expect(['e1', 'e2', 'e3']).toContain(backend);
      const big = 'x'.repeat(256 * 1024);
      client.write(`ping\n${big}`);
      client.socket.end();
      await waitFor(() => client.ended, { message: 'the echo to end after the half-close' });
      expect(client.received.endsWith(`ping\n${big}`)).toBe(true);
      await waitFor(() => client.closed);
    });

    it('survive clients and backends that hang up or reset at any point, and leave no session behind', async () => {
      // Each connection sends a few bytes to a few KiB, and then: half-closes, closes, resets (at
      // once, or after part of the echo came back), or has the backend reset mid-stream. A seeded
      // generator, so that a failure names the connection that caused it.
      let seed = 0x13579bdf;
      const random = (n: number): number => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return (seed >>> 8) % n;
      };
      const hangUp = async (i: number): Promise<void> => {
        const socket = netConnect({ host: HOST, port: ports.echo! });
        socket.on('error', () => undefined);
        socket.on('data', () => undefined);
        await new Promise<void>((resolve) => {
          socket.once('connect', resolve);
          socket.once('error', () => resolve());
        });
        const bytes = Buffer.alloc(1 + random(8192), 0x61 + (i % 26));
        const how = random(6);
        if (how === 5) bytes.write('!reset', random(bytes.length));
        socket.write(bytes);
        if (how === 0) socket.end();
        else if (how === 1) socket.destroy();
        else if (how === 2) socket.resetAndDestroy();
        else {
          const after = random(40);
          await new Promise((r) => setTimeout(r, after));
          if (how === 3) socket.resetAndDestroy();
          else socket.destroy();
        }
      };
      const started = Date.now();
      for (let batch = 0; batch < 8 && Date.now() - started < 20_000; batch++) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => hangUp(batch * 50 + j)));
      }
      // The node still serves, and every one of those sessions has ended, on both sides.
      const client = await open('echo');
      await client.greeting();
      client.write('still here\n');
      await client.expect(/still here\n/);
      client.destroy();
      await waitFor(async () => (await series('lb_dp_l4_connections{listener="echo"}')) === 0, { message: 'every session to end' });
      for (const b of ['e1', 'e2', 'e3'])
        await waitFor(async () => (await series(`lb_dp_l4_backend_connections{pool="echo",backend="${b}"}`)) === 0, { message: `${b}'s sessions to end` });
      expect(stack.dps[0]!.process.process.exitCode).toBeNull();
    });

    it('hash the client address: every connection from one address reaches one backend, addresses spread', async () => {
      const chosen = new Map<string, Set<string>>();
      for (let i = 2; i <= 9; i++) {
        const from = `127.0.0.${i}`;
        for (let n = 0; n < 3; n++) {
          const client = await open('echo', from);
          const { backend, client: seen } = await client.greeting();
          expect(seen.startsWith(`${HOST}:`)).toBe(true);
          if (!chosen.has(from)) chosen.set(from, new Set());
          chosen.get(from)!.add(backend);
          client.destroy();
        }
      }
      for (const [from, set] of chosen) expect(set.size, `${from} went to ${[...set]}`).toBe(1);
      expect(new Set([...chosen.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
    });

    it('a backend killed mid-stream closes its sessions; new connections are retried onto the other and it is ejected', async () => {
      const clients = await sessionPerBackend('kill');
      expect(Object.keys(clients).sort()).toEqual(['k1', 'k2']);
      clients.k1!.write('before\n');
      await clients.k1!.expect(/before\n/);
      await backends.k1!.kill();
      // The backend's FIN reaches the client, which closes its side too (no half-open client here).
      await waitFor(() => clients.k1!.closed, { message: 'the killed backend session to close' });
      expect(clients.k1!.ended).toBe(true);
      // The other session keeps flowing.
      clients.k2!.write('still here\n');
      await clients.k2!.expect(/still here\n/);
      for (let i = 0; i < 4; i++) {
        const c = await open('kill');
        expect((await c.greeting()).backend).toBe('k2');
        c.destroy();
      }
      expect(await series('lb_dp_l4_backend_connect_failures_total{pool="kill",backend="k1"}')).toBeGreaterThanOrEqual(1);
      expect(await series('lb_dp_backend_ejected{pool="kill",backend="k1"}')).toBe(1);
      clients.k2!.destroy();
    });

    it('drain a backend: its open session lives on until drainTimeoutMs, new ones go elsewhere', async () => {
      const sessions = await sessionPerBackend('drain');
      expect(Object.keys(sessions).sort()).toEqual(['d1', 'd2']);
      const res = await api('PATCH', `${stack.cp.url}/v1/pools/drain/backends/d1`, { state: 'draining' });
      expect(res.status).toBe(200);
      await stack.converge(res.body.version);
      const drained = sessions.d1!;
      const startedAt = Date.now();
      drained.write('after drain\n');
      await drained.expect(/after drain\n/);
      for (let i = 0; i < 3; i++) {
        const c = await open('drain');
        expect((await c.greeting()).backend).toBe('d2');
        c.destroy();
      }
      await waitFor(() => drained.closed, { timeoutMs: 5000, message: 'the drained session to be closed' });
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(500);
      expect(sessions.d2!.closed).toBe(false);
      sessions.d2!.destroy();
    });

    it("follow the control plane's TCP health checks: a backend found down gets no connection at all", async () => {
      await waitFor(
        async () => {
          const health = (
            (await (await fetch(`${stack.dps[0]!.adminUrl}/config`)).json()) as { health: { backends: Record<string, Record<string, { status: string }>> } }
          ).health.backends.health;
          return health?.h1?.status === 'healthy' && health?.h2?.status === 'unhealthy';
        },
        { message: 'h1 healthy and h2 unhealthy on the node' },
      );
      for (let i = 0; i < 4; i++) {
        const c = await open('health');
        expect((await c.greeting()).backend).toBe('h1');
        c.destroy();
      }
      expect(await series('lb_dp_l4_backend_connect_failures_total{pool="health",backend="h2"}')).toBe(0);
    });

    it('hold a listener to maxConnections, and close sessions idle for idleTimeoutMs', async () => {
      const a = await open('limits');
      const b = await open('limits');
      await a.greeting();
      await b.greeting();
      const over = await open('limits');
      await waitFor(() => over.closed, { message: 'the connection over maxConnections to be closed' });
      expect(over.received).toBe('');
      expect(await series('lb_dp_l4_refused_total{listener="limits",reason="max-connections"}')).toBe(1);
      // `a` keeps talking, `b` says nothing: only `b` is closed for idling.
      const startedAt = Date.now();
      const talk = setInterval(() => a.write('.'), 200);
      try {
        await waitFor(() => b.closed, { timeoutMs: 5000, message: 'the idle session to be closed' });
        expect(Date.now() - startedAt).toBeGreaterThanOrEqual(700);
        expect(a.closed).toBe(false);
      } finally {
        clearInterval(talk);
      }
      const again = await open('limits');
      expect((await again.greeting()).backend).toBe('e1');
      again.destroy();
      a.destroy();
      // The connection turned away is in the access log, with why.
      const refusal = await waitFor(
        () =>
          readFileSync(accessLog, 'utf8')
            .split('\n')
            .find((l) => l.includes('"msg":"tcp"') && l.includes('"listener":"limits"') && l.includes('"end":"max-connections"')),
        { message: 'the refused connection in the access log' },
      );
      expect(JSON.parse(refusal)).toMatchObject({ client: HOST, connects: 0, bytesIn: 0 });
    });

    it("count open sessions for least_connections, up to the breaker's maxConnections per backend", async () => {
      const open4: TcpClient[] = [];
      const where: Record<string, number> = {};
      for (let i = 0; i < 4; i++) {
        const c = await open('lc');
        const { backend } = await c.greeting();
        where[backend] = (where[backend] ?? 0) + 1;
        open4.push(c);
      }
      expect(where).toEqual({ e2: 2, e3: 2 });
      const full = await open('lc');
      await waitFor(() => full.closed, { message: "a connection past every backend's maxConnections to be closed" });
      expect(full.received).toBe('');
      expect(await series('lb_dp_l4_refused_total{listener="lc",reason="no-backend"}')).toBe(1);
      // One session on e3 ends: e3 has the fewest open, so it takes the next one.
      const onE3 = open4.find((c) => c.received.startsWith('hello e3'))!;
      onE3.destroy();
      await waitFor(async () => (await series('lb_dp_l4_backend_connections{pool="lc",backend="e3"}')) === 1, { message: 'the e3 session to end' });
      const next = await open('lc');
      expect((await next.greeting()).backend).toBe('e3');
      for (const c of [...open4, next]) c.destroy();
      // Every session ended, the refused one too: none is left counted (or held, so that a drain would wait on it).
      await waitFor(async () => (await series('lb_dp_l4_connections{listener="lc"}')) === 0, { message: 'no open session left on the listener' });
    });

    it("give up a connect after the pool's connectMs and retry it on another backend", async () => {
      await blackHole.fill();
      // Round robin over two backends: of two connections, one is sent to the black hole first.
      for (let i = 0; i < 2; i++) {
        const c = await open('slow');
        expect((await c.greeting()).backend).toBe('e1');
        c.destroy();
      }
      expect(await series('lb_dp_l4_backend_connect_failures_total{pool="slow",backend="hole"}')).toBe(1);
      expect(await series('lb_dp_upstream_errors_total{pool="slow",kind="timeout"}')).toBe(1);
    });

    it('carry 1,000 concurrent connections through one node', async () => {
      const clients: TcpClient[] = [];
      try {
        for (let batch = 0; batch < 10; batch++) {
          const opened = await Promise.all(Array.from({ length: 100 }, () => open('echo')));
          clients.push(...opened);
          await Promise.all(
            opened.map(async (c, i) => {
              c.write(`n${batch * 100 + i}\n`);
              await c.expect(new RegExp(`n${batch * 100 + i}\\n`), 15_000);
            }),
          );
        }
        expect(await series('lb_dp_l4_connections{listener="echo"}')).toBe(1000);
        // Every one still answers with all of them open.
        await Promise.all(
          clients.map(async (c, i) => {
            c.write(`again${i}\n`);
            await c.expect(new RegExp(`again${i}\\n`), 15_000);
          }),
        );
      } finally {
        for (const c of clients) c.destroy();
      }
      await waitFor(async () => (await series('lb_dp_l4_connections{listener="echo"}')) === 0, { message: 'the sessions to end' });
    });
  });

  /** A socket for tls.connect that sends the first write (the ClientHello) in two packets, 100 ms apart. */
  class SplitFirstWrite extends Duplex {
    private first = true;
    constructor(private readonly raw: Socket) {
      super();
      raw.on('data', (d: Buffer) => this.push(d));
      raw.on('end', () => this.push(null));
      raw.on('error', (err) => this.destroy(err));
    }
    override _read(): void {}
    override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
      if (!this.first) {
        this.raw.write(chunk, callback);
        return;
      }
      this.first = false;
      this.raw.write(chunk.subarray(0, 20));
      setTimeout(() => this.raw.write(chunk.subarray(20), callback), 100);
    }
    override _final(callback: () => void): void {
      this.raw.end(callback);
    }
  }

  describe('tls-passthrough listeners (issue 13)', () => {
    const sClient = (servername: string | undefined) =>
      run(
        'openssl',
        [
          's_client',
          '-connect',
          `${HOST}:${ports.tls}`,
          '-CAfile',
          pki.rootFile,
          '-ign_eof',
          ...(servername === undefined ? ['-noservername'] : ['-servername', servername]),
        ],
        'ping\nbye\n',
      );

    it('route on the SNI without terminating: exact, wildcard, and the default route for no SNI', async () => {
      const exact = await sClient('a.example');
      expect(exact.stdout).toMatch(/^subject=CN\s?=\s?a\.example/m);
      expect(exact.stdout).toMatch(/Verify return code: 0 \(ok\)/);
      expect(exact.stdout).toContain('hello ta from 127.0.0.1');
      expect(exact.stdout).toContain('sni=a.example');
      const wild = await sClient('x.y.wild.example');
      expect(wild.stdout).toContain('hello tw from');
      expect(wild.stdout).toContain('sni=x.y.wild.example');
      const other = await sClient('nobody.example');
      expect(other.stdout).toContain('hello td from');
      const none = await sClient(undefined);
      expect(none.stdout).toContain('hello td from');
      expect(none.stdout).not.toContain('sni=');
    });

    it('read a ClientHello split across packets', async () => {
      const raw = await new Promise<Socket>((resolve, reject) => {
        const s = netConnect(ports.tls!, HOST, () => resolve(s));
        s.once('error', reject);
      });
      const socket = tlsConnect({ socket: new SplitFirstWrite(raw), servername: 'a.example', ca: readFileSync(pki.rootFile) });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => (text += d));
      await waitFor(() => /hello ta from .* sni=a\.example\n/.test(text), { message: `the a.example backend's greeting (got ${JSON.stringify(text)})` });
      socket.destroy();
    });

    it('send garbage to the default route, and close a client that sends no ClientHello in time', async () => {
      const before = await series('lb_dp_l4_backend_connections_total{pool="tls-default",backend="td"}');
      const garbage = await open('tls');
      garbage.write('GET / HTTP/1.0\r\n\r\n');
      await waitFor(() => garbage.closed, { message: 'the default TLS backend to refuse the garbage' });
      expect(await series('lb_dp_l4_backend_connections_total{pool="tls-default",backend="td"}')).toBe(before + 1);
      const silent = await open('tls');
      silent.write('\x16\x03\x01');
      await waitFor(() => silent.closed, { timeoutMs: 3000, message: 'the silent client to be closed' });
      expect(silent.received).toBe('');
      expect(await series('lb_dp_l4_refused_total{listener="tls",reason="hello-timeout"}')).toBeGreaterThanOrEqual(1);
    });
  });

  describe('PROXY protocol (issue 13)', () => {
    it('send v1 and v2 headers with the client address to backends that check them', async () => {
      const v1 = await open('pp1', '127.0.0.2');
      const seen1 = await v1.expect(/^hello p1 from (\S+) to (\S+)\n/);
      expect(seen1[1]).toBe(`127.0.0.2:${v1.socket.localPort}`);
      expect(seen1[2]).toBe(`${HOST}:${ports.pp1}`);
      v1.write('data after the header\n');
      await v1.expect(/data after the header\n/);
      v1.destroy();
      const v2 = await open('pp2', '127.0.0.3');
      const seen2 = await v2.expect(/^hello p2 from (\S+) to (\S+)\n/);
      expect(seen2[1]).toBe(`127.0.0.3:${v2.socket.localPort}`);
      expect(seen2[2]).toBe(`${HOST}:${ports.pp2}`);
      v2.destroy();
    });

    it('accept a header from a trusted balancer only: the client address cannot be forged', async () => {
      const trusted = await open('outer', '127.0.0.5');
      trusted.write('PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\r\nhello through\n');
      await trusted.expect(/^hello p1 from 203\.0\.113\.7:5555 to 198\.51\.100\.1:443\nhello through\n/);
      trusted.destroy();
      const v2 = Buffer.concat([
        Buffer.from('0d0a0d0a000d0a515549540a', 'hex'),
        Buffer.from([0x21, 0x11, 0x00, 0x0c, 203, 0, 113, 9, 198, 51, 100, 2]),
        Buffer.from([0x1f, 0x90, 0x01, 0xbb]),
      ]);
      const trustedV2 = await open('outer', '127.0.0.5');
      trustedV2.write(v2);
      await trustedV2.expect(/^hello p1 from 203\.0\.113\.9:8080 to 198\.51\.100\.2:443\n/);
      trustedV2.destroy();

      const forged = await open('outer', '127.0.0.6');
      forged.write('PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\r\n');
      await waitFor(() => forged.closed, { message: 'the untrusted source to be closed' });
      expect(forged.received).toBe('');
      expect(await series('lb_dp_l4_refused_total{listener="outer",reason="untrusted-source"}')).toBeGreaterThanOrEqual(1);

      const malformed = await open('outer', '127.0.0.5');
      malformed.write('PROXY TCP4 999.0.0.1 198.51.100.1 5555 443\r\n');
      await waitFor(() => malformed.closed, { message: 'the malformed header to be refused' });
      expect(malformed.received).toBe('');
      expect(await series('lb_dp_l4_refused_total{listener="outer",reason="bad-proxy-header"}')).toBeGreaterThanOrEqual(1);
    });
  });

  describe('L4 config, metrics and access log (issue 13)', () => {
    it('refuse HTTP-only fields on routes and pools of L4 listeners, naming the field', async () => {
      const cp = stack.cp.url;
      const hsts = await api('PUT', `${cp}/v1/routes/echo`, { listeners: ['echo'], pools: [{ pool: 'echo' }], match: { pathPrefix: '/api' }, hsts: {} });
      expect(hsts.status).toBe(400);
      const fields = (hsts.body.errors as Array<{ field: string }>).map((e) => e.field);
      expect(fields).toContain('routes.echo.match.pathPrefix');
      expect(fields).toContain('routes.echo.hsts');
      const sticky = await api('PUT', `${cp}/v1/pools/echo`, { algorithm: 'round_robin', sticky: {}, backends: [] });
      expect(sticky.status).toBe(400);
      expect(JSON.stringify(sticky.body)).toContain('pools.echo.sticky');
      const tls = await api('PUT', `${cp}/v1/listeners/echo`, { port: ports.echo, protocol: 'tcp', tls: { certificates: ['x'] } });
      expect(tls.status).toBe(400);
      const cidr = await api('PUT', `${cp}/v1/listeners/outer`, {
        port: ports.outer,
        protocol: 'tcp',
        acceptProxyProtocol: { trustedSources: ['10.0.0.0/33'] },
      });
      expect(cidr.status).toBe(400);
      expect(JSON.stringify(cidr.body)).toContain('acceptProxyProtocol.trustedSources[0]');
    });

    it('count connections and bytes per listener and backend, and log each session', async () => {
      const before = await series('lb_dp_l4_bytes_total{listener="pp1",direction="in"}');
      const client = await open('pp1');
      await client.greeting();
      client.write('0123456789\n');
      await client.expect(/0123456789\n/);
      client.socket.end();
      await waitFor(() => client.closed);
      await waitFor(async () => (await series('lb_dp_l4_bytes_total{listener="pp1",direction="in"}')) === before + 11, { message: 'bytes in to be counted' });
      const text = await metrics();
      expect(text).toMatch(/lb_dp_l4_connections_total\{listener="pp1"\} [1-9]/);
      expect(text).toMatch(/lb_dp_l4_backend_connections_total\{pool="proxy-v1",backend="p1"\} [1-9]/);
      expect(text).toMatch(/lb_dp_l4_backend_bytes_total\{pool="proxy-v1",backend="p1",direction="out"\} [1-9]/);
      expect(text).toMatch(/lb_dp_l4_connect_failures_total\{listener="kill"\} [1-9]/);
      const line = await waitFor(
        () =>
          readFileSync(accessLog, 'utf8')
            .split('\n')
            .filter((l) => l.includes('"msg":"tcp"') && l.includes('"listener":"pp1"'))
            .map((l) => JSON.parse(l))
            .find((e) => e.bytesIn === 11),
        { message: 'the session in the access log' },
      );
      expect(line).toMatchObject({ route: 'pp1', pool: 'proxy-v1', backend: 'p1', connects: 1, end: 'closed', client: HOST });
      // A session whose pool sends no PROXY header names its client too; a refused one says why.
      const hello = await waitFor(
        () =>
          readFileSync(accessLog, 'utf8')
            .split('\n')
            .filter((l) => l.includes('"msg":"tcp"') && l.includes('"listener":"tls"') && l.includes('"sni":"a.example"'))
            .map((l) => JSON.parse(l))[0],
      );
      expect(hello).toMatchObject({ client: HOST, route: 'tls-a', pool: 'tls-a', backend: 'ta', end: 'closed' });
      const timedOut = await waitFor(() =>
        readFileSync(accessLog, 'utf8')
          .split('\n')
          .find((l) => l.includes('"msg":"tcp"') && l.includes('"end":"hello-timeout"')),
      );
      expect(JSON.parse(timedOut)).toMatchObject({ listener: 'tls', client: HOST, connects: 0 });
      expect(line.bytesOut).toBeGreaterThan(11);
      expect(line.durationMs).toBeGreaterThan(0);
    });

    it('drain L4 listeners on SIGTERM: open sessions finish within --drain-timeout-ms, then are closed', async () => {
      const dp = stack.dps[0]!;
      const session = await open('echo');
      await session.greeting();
      dp.process.process.kill('SIGTERM');
      // New connections are refused at once; the open session still flows.
      await waitFor(
        async () =>
          (await TcpClient.open(HOST, ports.echo!)
            .then((c) => (c.destroy(), false))
            .catch(() => true)) === true,
        {
          message: 'the listener to stop accepting',
        },
      );
      session.write('during drain\n');
      await session.expect(/during drain\n/);
      await waitFor(() => session.closed, { timeoutMs: 5000, message: 'the session to be cut after the grace period' });
      expect(await dp.process.exited).toBe(0);
    });
  });
}
