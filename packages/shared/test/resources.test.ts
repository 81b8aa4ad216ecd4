import { describe, expect, it } from 'vitest';
import { parseResourceKey, resourceKey, resourcesOf } from '../src/config/resources.js';
import type { Config } from '../src/config/model.js';
import { configDigest, resourceHash } from '../src/protocol/resource-digest.js';

const config = {
  pools: { web: { algorithm: 'round_robin', backends: [] }, api: { algorithm: 'random', backends: [] } },
  routes: { main: { match: { pathPrefix: '/' }, pools: [{ pool: 'web', weight: 1 }] } },
  listeners: { https: { port: 443 } },
} as unknown as Config;

describe('config resources', () => {
  it('lists every named resource of every section, sections the model does not know included', () => {
    expect([...resourcesOf(config)].map((r) => r.key)).toEqual(['pools/web', 'pools/api', 'routes/main', 'listeners/https']);
    expect(parseResourceKey(resourceKey('routes', 'main'))).toEqual({ section: 'routes', name: 'main' });
  });

  it('digests the same resources under the same names alike, whatever their order, and anything else differently', () => {
    const a = new Map([
      ['pools/web', resourceHash('{"x":1}')],
      ['routes/main', resourceHash('{"y":2}')],
    ]);
    const reordered = new Map([...a].reverse());
    expect(configDigest(reordered)).toBe(configDigest(a));
    expect(configDigest(new Map([...a, ['pools/web', resourceHash('{"x":2}')]]))).not.toBe(configDigest(a));
    expect(
      configDigest(
        new Map([
          ['pools/main', a.get('routes/main')!],
          ['routes/web', a.get('pools/web')!],
        ]),
      ),
    ).not.toBe(configDigest(a));
    expect(resourceHash('{"x":1}')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
