import { describe, expect, it } from 'vitest';
import { readConfigDocument } from '../src/config-file.js';
import { formatChanges } from '../src/diff-format.js';
import { EXIT, exitCodeOfStatus } from '../src/exit-codes.js';
import { ago, formatted, table } from '../src/output.js';

describe('output', () => {
  it('aligns table columns and marks empty cells', () => {
    expect(
      table(
        ['POOL', 'BACKENDS'],
        [
          ['web', 2],
          ['api-long-name', null],
        ],
      ),
    ).toBe('POOL           BACKENDS\nweb            2\napi-long-name  -');
  });

  it('prints JSON and YAML documents as they are', () => {
    expect(formatted('json', { a: [1] }, () => 'x')).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(formatted('yaml', { a: [1] }, () => 'x')).toBe('a:\n  - 1');
    expect(formatted('table', { a: [1] }, () => 'x')).toBe('x');
  });

  it('says how long ago', () => {
    const now = Date.parse('2027-01-01T12:00:00Z');
    expect(ago('2027-01-01T11:59:30Z', now)).toBe('30s ago');
    expect(ago('2027-01-01T11:00:00Z', now)).toBe('60m ago');
    expect(ago('2026-12-25T12:00:00Z', now)).toBe('7d ago');
    expect(ago(null, now)).toBe('-');
  });

  it('marks added, removed and changed paths', () => {
    expect(
      formatChanges([
        { op: 'add', path: 'pools.web', after: { backends: [] } },
        { op: 'remove', path: 'routes.old', before: { pools: [] } },
        { op: 'change', path: 'pools.web.algorithm', before: 'random', after: 'maglev' },
      ]),
    ).toBe('+ pools.web: {"backends":[]}\n- routes.old: {"pools":[]}\n~ pools.web.algorithm: "random" -> "maglev"');
  });
});

describe('exit codes', () => {
  it('map the control plane answers onto what scripts branch on', () => {
    expect([400, 404, 405, 409, 410, 415].map((s) => exitCodeOfStatus(s))).toEqual(Array(6).fill(EXIT.REJECTED));
    expect(exitCodeOfStatus(401)).toBe(EXIT.AUTH);
    expect(exitCodeOfStatus(403)).toBe(EXIT.AUTH);
    expect(exitCodeOfStatus(412)).toBe(EXIT.CONFLICT);
    expect(exitCodeOfStatus(409, 'LB_CP_CONFLICT')).toBe(EXIT.CONFLICT);
    expect(exitCodeOfStatus(503)).toBe(EXIT.UNAVAILABLE);
  });
});

describe('config files', () => {
  it('take a bare config or what get config prints, from YAML or JSON', () => {
    const config = { pools: {}, routes: {} };
    expect(readConfigDocument('-', () => 'pools: {}\nroutes: {}\n')).toEqual(config);
    expect(readConfigDocument('-', () => JSON.stringify({ version: 9, config }))).toEqual(config);
    expect(() => readConfigDocument('-', () => '- a\n- b\n')).toThrow(/must hold a config/);
    expect(() => readConfigDocument('-', () => 'pools: [\n')).toThrow(/neither YAML nor JSON/);
  });
});
