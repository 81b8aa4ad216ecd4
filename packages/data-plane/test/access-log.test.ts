import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AccessLog } from '../src/access-log/access-log.js';

const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** One real request through a real server, handing its req/res to `inspect` once the response closed. */
async function roundTrip(respond: (res: ServerResponse) => void, inspect: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    const server = createServer((req, res) => {
      res.on('close', () => {
        inspect(req, res);
        resolve();
      });
      respond(res);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      request({ port, host: '127.0.0.1', path: '/a?b=1', method: 'POST', headers: { host: 'shop.test', 'x-request-id': 'rid-1' } }, (res) =>
        res.resume(),
      ).end();
    });
  });
  await closed;
}

describe('AccessLog', () => {
  it('is off unless asked for', () => {
    expect(AccessLog.open('off')).toBeUndefined();
  });

  it('describes a proxied request: route, pool, backend, retries, request id', async () => {
    let entry: ReturnType<typeof AccessLog.entry> | undefined;
    await roundTrip(
      (res) => res.end('ok'),
      (req, res) => (entry = AccessLog.entry(req, res, 100, 112.5, { route: 'shop', pool: 'web', backend: 'b2', retries: 1 }, undefined, undefined)),
    );
    expect(entry).toEqual({
      client: '127.0.0.1',
      method: 'POST',
      url: '/a?b=1',
      host: 'shop.test',
      status: 200,
      durationMs: 12.5,
      completed: true,
      requestId: 'rid-1',
      lbError: undefined,
      route: 'shop',
      pool: 'web',
      backend: 'b2',
      retries: 1,
    });
  });

  it("describes a local answer with the proxy's reason and no upstream", async () => {
    let entry: ReturnType<typeof AccessLog.entry> | undefined;
    await roundTrip(
      (res) => {
        res.statusCode = 404;
        res.end();
      },
      (req, res) => (entry = AccessLog.entry(req, res, 0, 1, undefined, 'generated-7', 'no_route')),
    );
    expect(entry).toMatchObject({ status: 404, requestId: 'generated-7', lbError: 'no_route' });
    expect(entry).not.toHaveProperty('backend');
  });

  it('appends JSON lines to a file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'lb-access-')), 'logs', 'access.log');
    const log = AccessLog.open(path)!;
    log.write({
      client: '127.0.0.1',
      method: 'GET',
      url: '/',
      host: 'x',
      status: 200,
      durationMs: 1,
      completed: true,
      requestId: 'r',
      lbError: undefined,
      retries: 2,
    });
    await log.close();
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'access', status: 200, retries: 2, requestId: 'r' });
    expect(typeof lines[0]!.time).toBe('string');
  });
});
