import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '@lb/shared';
import type { UpstreamPools } from '../src/upstream/upstream-pools.js';
import { snapshot, testApplier } from './helpers.js';

const backend = (id: string, address: string, state: 'active' | 'draining' = 'active') => ({ id, address, weight: 1, state });

function config(a: ReturnType<typeof backend>[], b: ReturnType<typeof backend>[]): Config {
  return { pools: { a: { algorithm: 'round_robin', backends: a }, b: { algorithm: 'round_robin', backends: b } }, routes: {} };
}

describe('upstream pools across tables (UpstreamRefs)', () => {
  const closers: UpstreamPools[] = [];
  afterEach(async () => {
    await Promise.all(closers.map((p) => p.closeAll()));
  });

  it('keeps an address open while any pool still sends to it, and closes it when the last one stops', () => {
    const { applier, upstreams } = testApplier();
    closers.push(upstreams);
    applier.onConfig(snapshot(1, config([backend('x', '10.0.0.1:80')], [backend('y', '10.0.0.1:80'), backend('z', '10.0.0.2:80')])));
    expect(upstreams.addresses().sort()).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    // Pool a drains its backend; pool b still sends to the same address.
    applier.onConfig(snapshot(2, config([backend('x', '10.0.0.1:80', 'draining')], [backend('y', '10.0.0.1:80'), backend('z', '10.0.0.2:80')])));
    expect(upstreams.addresses().sort()).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    applier.onConfig(snapshot(3, config([backend('x', '10.0.0.1:80', 'draining')], [backend('z', '10.0.0.2:80')])));
    expect(upstreams.addresses()).toEqual(['10.0.0.2:80']);
    applier.onConfig(snapshot(4, config([backend('x', '10.0.0.3:80')], [backend('z', '10.0.0.2:80')])));
    expect(upstreams.addresses().sort()).toEqual(['10.0.0.2:80', '10.0.0.3:80']);
  });
});
