import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SealedValueError, SecretBox, SecretKeyFileError } from '../src/secrets/secret-box.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-secret-box-'));

function keyFile(content: string, mode = 0o600): string {
  const path = join(dir, `key-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

describe('SecretBox', () => {
  it('opens what it sealed, only under the same id', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('-----BEGIN PRIVATE KEY-----\nabc\n', 'id-1');
    expect(sealed.alg).toBe('AES-256-GCM');
    expect(JSON.stringify(sealed)).not.toContain('PRIVATE KEY');
    expect(box.open(sealed, 'id-1').toString()).toBe('-----BEGIN PRIVATE KEY-----\nabc\n');
    expect(() => box.open(sealed, 'id-2')).toThrow(SealedValueError);
    // Two seals of one value differ (a fresh IV each time).
    expect(box.seal('x', 'id').data).not.toBe(box.seal('x', 'id').iv);
  });

  it('refuses a changed value and names another key file', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('secret', 'id');
    const flipped = Buffer.from(sealed.data, 'base64');
    flipped[0]! ^= 1;
    expect(() => box.open({ ...sealed, data: flipped.toString('base64') }, 'id')).toThrow(/does not open/);
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'id')).toThrow(/give every replica the same file/);
  });

  it('reads 64 hex digits or base64 from a private file, and nothing else', () => {
    const hex = randomBytes(32).toString('hex');
    expect(SecretBox.fromFile(keyFile(`${hex}\n`)).kid).toBe(new SecretBox(Buffer.from(hex, 'hex')).kid);
    expect(SecretBox.fromFile(keyFile(randomBytes(32).toString('base64'))).kid).toMatch(/^[0-9a-f]{16}$/);
    expect(() => SecretBox.fromFile(keyFile('too short'))).toThrow(SecretKeyFileError);
    expect(() => SecretBox.fromFile(keyFile(hex, 0o644))).toThrow(/readable by others: chmod 600/);
    expect(() => SecretBox.fromFile(join(dir, 'missing'))).toThrow(/cannot read/);
  });
});
