import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError } from '../src/exit-codes.js';
import { resolveSettings } from '../src/settings.js';

const dir = mkdtempSync(join(tmpdir(), 'lbctl-settings-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('resolveSettings', () => {
  it('takes flags over the environment over the config file, with a default URL', () => {
    const tokenFile = file('token', 'lb_from_file\n');
    const config = file('config.yaml', `url: http://file:8080\ntokenFile: ${tokenFile}\n`);
    expect(resolveSettings({ config }, {})).toEqual({ url: 'http://file:8080', token: 'lb_from_file' });
    expect(resolveSettings({ config }, { LB_URL: 'http://env:8080/', LB_TOKEN: 'lb_env' })).toEqual({ url: 'http://env:8080', token: 'lb_env' });
    expect(resolveSettings({ config, url: 'https://flag:1', tokenFile }, { LB_URL: 'http://env:8080', LB_TOKEN: 'lb_env' })).toEqual({
      url: 'https://flag:1',
      token: 'lb_from_file',
    });
    expect(resolveSettings({ config: file('empty.yaml', '') }, {})).toEqual({ url: 'http://127.0.0.1:8080' });
    expect(resolveSettings({}, { LBCTL_CONFIG: file('env.yaml', 'token: lb_inline\n') })).toEqual({ url: 'http://127.0.0.1:8080', token: 'lb_inline' });
  });

  it('refuses a bad URL, a missing named config file, unknown fields and an empty token file (usage, exit 2)', () => {
    const cases: Array<[Parameters<typeof resolveSettings>[0], NodeJS.ProcessEnv, RegExp]> = [
      [{ url: 'ftp://x' }, {}, /--url "ftp:\/\/x" must be http/],
      [{}, { LB_URL: 'not a url' }, /LB_URL "not a url" is not a URL/],
      [{ config: join(dir, 'missing.yaml') }, {}, /cannot read the config file/],
      [{ config: file('odd.yaml', 'url: http://a:1\ncontext: prod\n') }, {}, /unknown field\(s\) context/],
      [{ tokenFile: file('blank', '\n') }, {}, /is empty/],
    ];
    for (const [options, env, message] of cases) {
      let caught: unknown;
      try {
        resolveSettings(options, env);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CliError);
      expect((caught as CliError).code).toBe(2);
      expect((caught as CliError).message).toMatch(message);
    }
  });
});
