/**
 * A process holding many simulated data-plane nodes (simulated-node.ts), started by NodeFleet
 * (node-fleet.ts): `node --import tsx node-fleet-process.ts --control-plane A[,B] --nodes N --prefix P`.
 * Writes one JSON line per node event to stdout, batched per event-loop turn; exits on SIGTERM.
 */
import { parseArgs } from 'node:util';
import { ApplyCache, SimulatedNode, type NodeEvent } from './simulated-node.js';

const { values } = parseArgs({
  options: {
    'control-plane': { type: 'string' },
    nodes: { type: 'string', default: '1' },
    prefix: { type: 'string', default: 'sim' },
  },
});
const addresses = (values['control-plane'] ?? '').split(',').filter(Boolean);
if (addresses.length === 0) throw new Error('--control-plane is required');

let pending: string[] = [];
function emit(event: NodeEvent): void {
  if (pending.length === 0) setImmediate(flush);
  pending.push(JSON.stringify(event));
}
function flush(): void {
  const lines = pending;
  pending = [];
  process.stdout.write(`${lines.join('\n')}\n`);
}

const cache = new ApplyCache();
const nodes = Array.from({ length: Number(values.nodes) }, (_, i) => new SimulatedNode({ id: `${values.prefix}-${i}`, addresses, cache, onEvent: emit }));
for (const node of nodes) node.start();

process.on('SIGTERM', () => {
  for (const node of nodes) node.stop();
  process.exit(0);
});
