import { describe, expect, it } from 'vitest';
import { diffConfigs } from '../src/config/diff.js';
import type { Config } from '../src/config/model.js';

const base: Config = {
  pools: {
    web: {
      algorithm: 'round_robin',
      backends: [
        { id: 'a', address: 'h:1', weight: 1, state: 'active' },
        { id: 'b', address: 'h:2', weight: 1, state: 'active' },
        { id: 'c', address: 'h:3', weight: 1, state: 'active' },
      ],
    },
  },
  routes: { r: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } },
};

describe('diffConfigs', () => {
  it('is empty for equal configs', () => {
    expect(diffConfigs(base, structuredClone(base))).toEqual([]);
  });

  it('keys backends by id, so a removal in the middle is one change', () => {
    const after = structuredClone(base);
    after.pools.web!.backends.splice(1, 1);
    expect(diffConfigs(base, after)).toEqual([{ op: 'remove', path: 'pools.web.backends.b', before: base.pools.web!.backends[1] }]);
  });

  it('reports field changes, additions and removed pools', () => {
    const after = structuredClone(base);
    after.pools.web!.backends[0]!.weight = 5;
    after.pools.api = { algorithm: 'round_robin', backends: [] };
    after.routes = {};
    expect(diffConfigs(base, after)).toEqual(
      expect.arrayContaining([
        { op: 'change', path: 'pools.web.backends.a.weight', before: 1, after: 5 },
        { op: 'add', path: 'pools.api', after: after.pools.api },
        { op: 'remove', path: 'routes.r', before: base.routes.r },
      ]),
    );
  });
});
