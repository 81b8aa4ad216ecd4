import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger, FlagError } from '@lb/shared';
import { testPki } from '../../../test/support/pki.js';
import { readBootstrapConfig, seedEmptyStore } from '../src/bootstrap/bootstrap-config.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { ConfigWriter } from '../src/versioning/config-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-bootstrap-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('--bootstrap-config', () => {
  it('reads YAML, JSON and the GET /v1/config document, with defaults filled in', () => {
    const yaml = file('lb.yaml', 'pools:\n  web:\n    backends:\n      - id: b1\n        address: 10.0.0.1:80\nroutes:\n  site:\n    pools: [{ pool: web }]\n');
    const { config, keys } = readBootstrapConfig(yaml);
    expect(keys).toEqual([]);
    expect(config.pools.web?.backends).toEqual([{ id: 'b1', address: '10.0.0.1:80', weight: 1, state: 'active' }]);
    expect(readBootstrapConfig(file('lb.json', JSON.stringify({ version: 7, config }))).config).toEqual(config);
  });

  it('names the file and every bad field in a FlagError (usage, exit 2)', () => {
    const bad = file('bad.yaml', 'pools:\n  web:\n    backends:\n      - id: b1\n        address: 999.1.1.1:80\n    colour: red\n');
    expect(() => readBootstrapConfig(bad)).toThrow(FlagError);
    expect(() => readBootstrapConfig(bad)).toThrow(/bad\.yaml is not a valid config:\n {2}pools\.web\.colour: unknown field/);
    expect(() => readBootstrapConfig(file('broken.yaml', 'pools: [\n'))).toThrow(/neither YAML nor JSON/);
    expect(() => readBootstrapConfig(join(dir, 'missing.yaml'))).toThrow(/cannot read it/);
  });

  it.each(['deploy/demo/lb.yaml', 'deploy/kubernetes/lb.yaml', 'deploy/docker/demo-config.json'])('the shipped %s is a valid config', (path) => {
    const { config } = readBootstrapConfig(fileURLToPath(new URL(`../../../${path}`, import.meta.url)));
    expect(Object.keys(config.pools).length).toBeGreaterThan(0);
  });

  it('seeds an empty store as version 1 by bootstrap-config, and leaves a store that has a version alone', async () => {
    const { config } = readBootstrapConfig(file('seed.yaml', 'pools: {}\nroutes: {}\n'));
    const logger = createLogger('test', 'silent');
    const store = new MemoryConfigStore();
    const withPool = { pools: { p: { algorithm: 'round_robin' as const, backends: [] } }, routes: {} };
    await seedEmptyStore({ writer: new ConfigWriter(store), config: withPool, path: 'seed.yaml', logger, isStopped: () => false });
    expect(await store.getVersion(1)).toMatchObject({ actor: 'bootstrap-config', source: 'file:seed.yaml', message: 'bootstrap config from seed.yaml' });
    await seedEmptyStore({ writer: new ConfigWriter(store), config, path: 'seed.yaml', logger, isStopped: () => false });
    expect(await store.currentVersion()).toBe(1);
  });

  it('takes certificates with their private keys, which stay out of the config', () => {
    const site = testPki().issue({ cn: 'site.example' });
    const text = JSON.stringify({ pools: {}, routes: {}, certificates: { site: { certificate: site.chain, privateKey: site.key } } });
    const { config, keys } = readBootstrapConfig(file('tls.json', text));
    expect(config.certificates).toEqual({ site: { certificate: site.chain } });
    expect(keys).toEqual([{ id: expect.stringMatching(/^[0-9a-f]{64}$/), pem: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) }]);
    const other = testPki().issue({ cn: 'other.example' });
    const mismatched = JSON.stringify({ certificates: { site: { certificate: site.chain, privateKey: other.key } } });
    expect(() => readBootstrapConfig(file('bad-key.json', mismatched))).toThrow(/certificates\.site\.privateKey: does not match the certificate/);
  });
});
