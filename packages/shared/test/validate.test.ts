import { describe, expect, it } from 'vitest';
import { validateBackend, validateBackendPatch, validateConfig, validatePool, validateRoute } from '../src/config/validate.js';

const good = {
  pools: {
    web: {
      algorithm: 'weighted_round_robin',
      backends: [
        { id: 'a', address: '127.0.0.1:9001', weight: 5 },
        { id: 'b', address: 'app.internal:80' },
      ],
    },
  },
  routes: { main: { match: { host: 'example.com', pathPrefix: '/' }, pools: [{ pool: 'web' }] } },
};

function fields(result: ReturnType<typeof validateConfig>): string[] {
  return result.ok ? [] : result.errors.map((e) => e.field);
}

describe('validateConfig', () => {
  it('accepts a good config and fills every default into a copy', () => {
    const input = structuredClone(good);
    const result = validateConfig(input);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.pools.web!.backends[1]).toEqual({ id: 'b', address: 'app.internal:80', weight: 1, state: 'active' });
    expect(result.value.routes.main!.pools[0]).toEqual({ pool: 'web', weight: 1 });
    expect(input).toEqual(good); // the input is never modified
  });

  it('fills top-level defaults for an empty document', () => {
    expect(validateConfig({})).toEqual({ ok: true, value: { pools: {}, routes: {} } });
  });

  it('reports every problem with the field at fault', () => {
    const result = validateConfig({
      pools: {
        web: {
          algorithm: 'fastest',
          backends: [
            { id: 'a', address: '10.0.0.1', weight: 0 },
            { id: 'a', address: '10.0.0.2:80', colour: 'red' },
          ],
        },
        Bad_Name: {},
      },
      routes: { r: { match: { pathPrefix: 'no-slash' }, pools: [{ pool: 'missing' }] } },
      extra: true,
    });
    expect(result.ok).toBe(false);
    expect(fields(result)).toEqual(
      expect.arrayContaining([
        'extra',
        'pools.Bad_Name',
        'pools.web.algorithm',
        'pools.web.backends[0].weight',
        'pools.web.backends[1].colour',
        'routes.r.match.pathPrefix',
      ]),
    );
  });

  it('checks cross-references once the structure is sound', () => {
    const result = validateConfig({
      pools: {
        web: {
          backends: [
            { id: 'a', address: '10.0.0.1' },
            { id: 'a', address: '10.0.0.2:1' },
            { id: 'c', address: '10.0.0.2:1' },
          ],
        },
      },
      routes: { r: { pools: [{ pool: 'missing' }, { pool: 'web', weight: 0 }] }, s: { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] } },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const byField = Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
    expect(byField['pools.web.backends[0].address']).toMatch(/port is missing/);
    expect(byField['pools.web.backends[1].id']).toMatch(/duplicate backend id/);
    expect(byField['pools.web.backends[2].address']).toMatch(/already used by backend "a"/);
    expect(byField['routes.r.pools[0].pool']).toMatch(/does not exist/);
    expect(byField['routes.s.match']).toMatch(/same match as route "r"/);
  });

  it('refuses a route whose pool weights are all zero', () => {
    const result = validateConfig({ pools: { web: {} }, routes: { r: { pools: [{ pool: 'web', weight: 0 }] } } });
    expect(fields(result)).toEqual(['routes.r.pools']);
  });

  it('refuses non-objects', () => {
    expect(validateConfig([])).toEqual({ ok: false, errors: [{ field: '(body)', message: 'must be a JSON object' }] });
    expect(validateConfig('x').ok).toBe(false);
    expect(validateConfig(null).ok).toBe(false);
  });

  it.each([
    ['127.0.0.1:0', /1..65535/],
    ['127.0.0.1:65536', /1..65535/],
    ['host:http', /numeric port/],
    ['::1:80', /brackets/],
    ['[::1]80', /host:port/],
    ['bad_host:80', /not a valid host/],
    ['999.1.1.1:80', /"999\.1\.1\.1" is not an IPv4 address: it needs 4 numbers from 0 to 255/],
    ['10.0.0:80', /not an IPv4 address/],
    ['010.0.0.1:80', /no leading zeros/],
    ['http://10.0.0.1:80', /without a scheme: drop "http:\/\/"/],
    ['10.0.0.1:80/api', /without a path/],
  ])('refuses backend address %s', (address, message) => {
    const result = validateBackend({ id: 'a', address });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]!.message).toMatch(message);
  });

  it.each(['127.0.0.1:1', '255.255.255.255:1', '[::1]:8080', 'backend-1.svc.cluster.local:443', 'localhost:65535', '1a.example:80'])(
    'accepts backend address %s',
    (address) => {
      expect(validateBackend({ id: 'a', address }).ok).toBe(true);
    },
  );
});

describe('piece validators', () => {
  it('reports pool fields relative to the pool body', () => {
    const result = validatePool({ backends: [{ id: 'x', address: 'h:1', weight: 1001 }] });
    expect(result).toEqual({ ok: false, errors: [{ field: 'backends[0].weight', message: 'must be <= 1000' }] });
  });

  it('takes the backend id from the path and refuses a different one in the body', () => {
    expect(validateBackend({ address: 'h:1' }, 'b1')).toEqual({ ok: true, value: { id: 'b1', address: 'h:1', weight: 1, state: 'active' } });
    const mismatch = validateBackend({ id: 'other', address: 'h:1' }, 'b1');
    expect(mismatch.ok).toBe(false);
    if (!mismatch.ok) expect(mismatch.errors[0]!.field).toBe('id');
  });

  it('validates a patch without filling defaults', () => {
    expect(validateBackendPatch({ weight: 7 })).toEqual({ ok: true, value: { weight: 7 } });
    expect(validateBackendPatch({}).ok).toBe(false);
    expect(validateBackendPatch({ state: 'gone' }).ok).toBe(false);
  });

  it('checks a route against the pools it may name', () => {
    expect(validateRoute({ pools: [{ pool: 'web' }] }, { web: { algorithm: 'round_robin', backends: [] } }).ok).toBe(true);
    const result = validateRoute({ match: { host: 'bad host' }, pools: [{ pool: 'api' }] }, {});
    expect(result.ok ? [] : result.errors.map((e) => e.field)).toEqual(['match.host', 'pools[0].pool']);
  });

  it('accepts wildcard hosts', () => {
    expect(validateRoute({ match: { host: '*.example.com' }, pools: [{ pool: 'web' }] }).ok).toBe(true);
  });
});

describe('validateConfig with a trusted config', () => {
  const base = validateConfig(good);
  if (!base.ok) throw new Error('fixture');
  const trusted = base.value;

  it('keeps trusted resources as they are (same objects) and checks only the others', () => {
    const next = { pools: { ...trusted.pools, api: { backends: [{ id: 'x', address: '10.0.0.9:80' }] } }, routes: trusted.routes };
    const result = validateConfig(next, '', { trusted });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.pools.web).toBe(trusted.pools.web);
    expect(result.value.routes.main).toBe(trusted.routes.main);
    expect(result.value.pools.api).toEqual({ algorithm: 'round_robin', backends: [{ id: 'x', address: '10.0.0.9:80', weight: 1, state: 'active' }] });
    expect(Object.keys(result.value.pools)).toEqual(['web', 'api']);
  });

  it('still checks relations across the whole result: a trusted route whose pool went is refused', () => {
    const result = validateConfig({ pools: {}, routes: trusted.routes }, '', { trusted });
    expect(fields(result)).toEqual(['routes.main.pools[0].pool']);
  });

  it('checks a changed resource under a trusted name, and unknown sections, as usual', () => {
    const changed = { pools: { web: { ...trusted.pools.web, algorithm: 'fastest' } }, routes: trusted.routes };
    expect(fields(validateConfig(changed, '', { trusted }))).toEqual(['pools.web.algorithm']);
    expect(fields(validateConfig({ ...trusted, mirrors: {} }, '', { trusted }))).toEqual(['mirrors']);
  });
});
