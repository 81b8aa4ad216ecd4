/** `lbctl get config|pools|routes|listeners|certificates|nodes|health|versions [NAME]`: what runs, as tables or -o json|yaml. */
import { CliError, EXIT } from '../exit-codes.js';
import type { Context } from '../context.js';
import { ago, formatted, table } from '../output.js';

export const RESOURCES = ['config', 'pools', 'routes', 'listeners', 'certificates', 'nodes', 'health', 'versions'] as const;
export type Resource = (typeof RESOURCES)[number];

interface Backend {
  id: string;
  address: string;
  weight: number;
  state: string;
}

interface Pool {
  algorithm: string;
  backends: Backend[];
  healthCheck?: { type: string; intervalMs: number };
}

interface Route {
  match?: { host?: string; pathPrefix?: string };
  pools: Array<{ pool: string; weight: number }>;
  listeners?: string[];
}

interface Listener {
  port: number;
  protocol: string;
  tls?: { certificates: string[]; minVersion: string };
}

/** What GET /v1/certificates says of one: metadata, never a key. */
interface CertificateView {
  name: string;
  subjectAltNames: string[];
  keyType: string;
  notAfter: string;
  hasPrivateKey: boolean;
  usedBy: string[];
  warning?: string;
}

interface NodeView {
  id: string;
  address: string;
  zone: string;
  status: string;
  configVersion: number;
  lastSeenAt: string | null;
  connectedAt: string;
  lastNack: { version: number; error: string } | null;
  replica: string;
}

function poolsTable(pools: Record<string, Pool>): string {
  return table(
    ['POOL', 'ALGORITHM', 'BACKENDS', 'ACTIVE', 'HEALTH CHECK'],
    Object.entries(pools).map(([name, p]) => [
      name,
      p.algorithm,
      p.backends.length,
      p.backends.filter((b) => b.state === 'active').length,
      p.healthCheck ? `${p.healthCheck.type} every ${p.healthCheck.intervalMs} ms` : '-',
    ]),
  );
}

function backendsTable(backends: Backend[]): string {
  return table(
    ['BACKEND', 'ADDRESS', 'WEIGHT', 'STATE'],
    backends.map((b) => [b.id, b.address, b.weight, b.state]),
  );
}

function routesTable(routes: Record<string, Route>): string {
  return table(
    ['ROUTE', 'HOST', 'PATH PREFIX', 'POOLS', 'LISTENERS'],
    Object.entries(routes).map(([name, r]) => [
      name,
      r.match?.host ?? '*',
      r.match?.pathPrefix ?? '/',
      r.pools.map((p) => `${p.pool}:${p.weight}`).join(' '),
      r.listeners?.join(' ') ?? '*',
    ]),
  );
}

function listenersTable(listeners: Record<string, Listener>): string {
  return table(
    ['LISTENER', 'PROTOCOL', 'PORT', 'CERTIFICATES', 'MIN TLS'],
    Object.entries(listeners).map(([name, l]) => [name, l.protocol, l.port, l.tls?.certificates.join(' ') ?? '-', l.tls?.minVersion ?? '-']),
  );
}

function certificatesTable(certificates: CertificateView[]): string {
  return table(
    ['CERTIFICATE', 'NAMES', 'KEY', 'NOT AFTER', 'KEY STORED', 'USED BY', 'WARNING'],
    certificates.map((c) => [
      c.name,
      c.subjectAltNames.join(' ') || '-',
      c.keyType,
      c.notAfter,
      c.hasPrivateKey ? 'yes' : 'no',
      c.usedBy.length === 0 ? '-' : c.usedBy.join(' '),
      c.warning ?? '-',
    ]),
  );
}

/** The config's tables: pools, routes, and listeners when it has any. */
function configTables(config: { pools: Record<string, Pool>; routes: Record<string, Route>; listeners?: Record<string, Listener> }): string {
  const listeners = config.listeners === undefined || Object.keys(config.listeners).length === 0 ? '' : `\n\n${listenersTable(config.listeners)}`;
  return `${poolsTable(config.pools)}\n\n${routesTable(config.routes)}${listeners}`;
}

export function nodesTable(nodes: NodeView[], current?: number): string {
  return table(
    ['NODE', 'STATUS', 'VERSION', 'ADDRESS', 'REPLICA', 'SINCE', 'LAST NACK'],
    nodes.map((n) => [
      n.id,
      n.status,
      current !== undefined && n.configVersion !== current ? `${n.configVersion} (current ${current})` : n.configVersion,
      n.address,
      n.replica,
      n.status === 'connected' ? `connected ${ago(n.connectedAt)}` : `last seen ${ago(n.lastSeenAt)}`,
      n.lastNack ? `v${n.lastNack.version}: ${n.lastNack.error.slice(0, 60)}` : '-',
    ]),
  );
}

async function getHealth(ctx: Context, name?: string): Promise<void> {
  const pools = name !== undefined ? [name] : Object.keys((await ctx.client.request('GET', '/v1/pools')).body.pools as Record<string, unknown>);
  const answers: Array<{ pool: string; backends: Array<Record<string, any>> }> = [];
  for (const pool of pools) answers.push((await ctx.client.request('GET', `/v1/pools/${encodeURIComponent(pool)}/health`)).body);
  const document = name !== undefined ? answers[0] : { pools: answers };
  ctx.out(
    formatted(ctx.format, document, () =>
      table(
        ['POOL', 'BACKEND', 'ADDRESS', 'STATE', 'STATUS', 'SINCE', 'LAST PROBE'],
        answers.flatMap((h) =>
          h.backends.map((b) => [
            h.pool,
            b.registered ? `${b.id} (registered)` : b.id,
            b.address,
            b.state,
            b.status,
            ago(b.since),
            b.lastProbe ? `${b.lastProbe.ok ? 'ok' : 'failed'} ${ago(b.lastProbe.at)}: ${b.lastProbe.detail}` : '-',
          ]),
        ),
      ),
    ),
  );
}

export async function get(ctx: Context, resource: string, name: string | undefined, options: { limit?: string }): Promise<void> {
  if (!(RESOURCES as readonly string[]).includes(resource)) throw new CliError(EXIT.USAGE, `cannot get "${resource}": use one of ${RESOURCES.join(', ')}`);
  const path = (p: string) => encodeURIComponent(p);
  switch (resource as Resource) {
    case 'config': {
      const { body } = await ctx.client.request('GET', '/v1/config');
      ctx.out(formatted(ctx.format, body, () => `version ${body.version}\n\n${configTables(body.config)}`));
      return;
    }
    case 'listeners': {
      const { body } = await ctx.client.request('GET', name !== undefined ? `/v1/listeners/${path(name)}` : '/v1/listeners');
      ctx.out(formatted(ctx.format, body, () => listenersTable(name !== undefined ? { [name]: body.listener } : body.listeners)));
      return;
    }
    case 'certificates': {
      const { body } = await ctx.client.request('GET', name !== undefined ? `/v1/certificates/${path(name)}` : '/v1/certificates');
      ctx.out(formatted(ctx.format, body, () => certificatesTable(name !== undefined ? [body.certificate] : body.certificates)));
      return;
    }
    case 'pools': {
      if (name !== undefined) {
        const { body } = await ctx.client.request('GET', `/v1/pools/${path(name)}`);
        ctx.out(formatted(ctx.format, body, () => `${poolsTable({ [name]: body.pool })}\n\n${backendsTable(body.pool.backends)}`));
        return;
      }
      const { body } = await ctx.client.request('GET', '/v1/pools');
      ctx.out(formatted(ctx.format, body, () => poolsTable(body.pools)));
      return;
    }
    case 'routes': {
      const { body } = await ctx.client.request('GET', name !== undefined ? `/v1/routes/${path(name)}` : '/v1/routes');
      ctx.out(formatted(ctx.format, body, () => routesTable(name !== undefined ? { [name]: body.route } : body.routes)));
      return;
    }
    case 'nodes': {
      const [{ body }, config] = await Promise.all([ctx.client.request('GET', '/v1/nodes'), ctx.client.request('GET', '/v1/config')]);
      const nodes = (body.nodes as NodeView[]).filter((n) => name === undefined || n.id === name);
      if (name !== undefined && nodes.length === 0) throw new CliError(EXIT.REJECTED, `no node is named "${name}"`);
      ctx.out(formatted(ctx.format, name !== undefined ? nodes[0] : body, () => nodesTable(nodes, config.body.version)));
      return;
    }
    case 'health':
      return getHealth(ctx, name);
    case 'versions': {
      if (name !== undefined) {
        const { body } = await ctx.client.request('GET', `/v1/versions/${path(name)}`);
        ctx.out(
          formatted(
            ctx.format,
            body,
            () =>
              `version ${body.version} (parent ${body.parent}) by ${body.actor ?? body.author} at ${body.createdAt}: ${body.message}\n\n${configTables(body.config)}`,
          ),
        );
        return;
      }
      const { body } = await ctx.client.request('GET', `/v1/versions?limit=${encodeURIComponent(options.limit ?? '20')}`);
      ctx.out(
        formatted(ctx.format, body, () =>
          table(
            ['VERSION', 'CREATED', 'ACTOR', 'SOURCE', 'MESSAGE'],
            (body.versions as Array<Record<string, any>>).map((v) => [
              v.version,
              v.createdAt,
              v.actor ?? v.author,
              v.source,
              v.rollbackOf !== undefined ? `${v.message} (rollback of ${v.rollbackOf})` : v.message,
            ]),
          ),
        ),
      );
      return;
    }
  }
}
