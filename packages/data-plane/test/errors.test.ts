import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, LOCAL_REPLY_CODES, UPSTREAM_ERRORS } from '../src/errors.js';

describe('data-plane error registry', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

  it.each(Object.values(ERROR_CODES))('%s is documented', (code) => {
    expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });

  it.each(Object.entries(LOCAL_REPLY_CODES))('x-lb-error %s is documented with its status', (code, { status }) => {
    expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
  });

  it.each(Object.values(UPSTREAM_ERRORS))('%s is documented', (code) => {
    expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });

  it('documents no code that does not exist', () => {
    const known = new Set<string>([...Object.values(ERROR_CODES), ...Object.keys(LOCAL_REPLY_CODES), ...Object.values(UPSTREAM_ERRORS)]);
    const documented = [...doc.matchAll(/^\| `([A-Za-z_]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.length).toBeGreaterThan(20);
    for (const code of documented) expect(known).toContain(code);
  });
});
