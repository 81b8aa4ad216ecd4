#!/usr/bin/env node
/** `lb-data-plane`: flags → DataPlaneNode, and signals → graceful stop. Nothing else lives here. */
import { hostname } from 'node:os';
import { FlagError, hostPortFlag, listFlag, parseFlags, runMain, usage, type FlagSpec } from '@lb/shared';
import { DataPlaneNode } from './node.js';

const COMMAND = 'lb-data-plane';

const FLAGS = {
  'control-plane': { description: 'control plane gRPC address(es), HOST:PORT[,HOST:PORT]', required: true },
  listen: { description: 'client traffic listener HOST:PORT', default: '127.0.0.1:8000' },
  'admin-listen': { description: 'admin listener (/healthz, /readyz, /metrics, /config) HOST:PORT', default: '127.0.0.1:9901' },
  'node-id': { description: 'this node\'s id as the control plane shows it (default: the host name)' },
  'cache-file': { description: 'where the last applied snapshot is kept (default: ./lb-data-plane-<node-id>.json)' },
  zone: { description: 'zone or rack label sent to the control plane (default: empty)' },
  'drain-timeout-ms': { description: 'on SIGTERM/SIGINT, how long requests in flight may take to finish', default: '10000' },
  'sticky-secret': { description: 'key that signs sticky-session cookies; give every data plane the same one (default: a built-in key, which does not stop forged cookies)' },
} satisfies Record<string, FlagSpec>;

const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  if (flags.help) {
    process.stdout.write(`${usage(COMMAND, FLAGS)}\n`);
    return;
  }
  const controlPlanes = listFlag('control-plane', flags['control-plane']!);
  for (const cp of controlPlanes) hostPortFlag('control-plane', cp);
  const listen = hostPortFlag('listen', flags.listen!);
  const adminListen = hostPortFlag('admin-listen', flags['admin-listen']!);
  const nodeId = flags['node-id'] ?? hostname();
  if (!NODE_ID_RE.test(nodeId)) throw new FlagError(`--node-id "${nodeId}": use letters, digits, '.', '_' and '-' (up to 253)`);
  const drainTimeoutMs = Number(flags['drain-timeout-ms']);
  if (!Number.isInteger(drainTimeoutMs) || drainTimeoutMs < 0) throw new FlagError('--drain-timeout-ms must be a whole number of milliseconds');

  const node = new DataPlaneNode({
    controlPlanes,
    listen,
    adminListen,
    nodeId,
    zone: flags.zone ?? '',
    cacheFile: flags['cache-file'] ?? `./lb-data-plane-${nodeId}.json`,
    drainTimeoutMs,
    stickySecret: flags['sticky-secret'],
  });
  try {
    await node.start();
  } catch (err) {
    node.logger.fatal({ err }, 'cannot start the data plane');
    process.exit(1);
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      node.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    node.logger.info({ signal }, 'shutting down: draining requests in flight');
    node.stop().then(
      () => {
        node.logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        node.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

await runMain(COMMAND, FLAGS, main);
