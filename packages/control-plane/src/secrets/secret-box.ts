/**
 * Encryption at rest of the secrets the control plane keeps in etcd (certificates' private keys,
 * session-ticket keys): AES-256-GCM with a random 96-bit IV per value and the value's id as
 * additional data, so a sealed value cannot be moved under another id. The 32-byte key comes from
 * --secrets-key-file and never leaves this process; every replica needs the same one.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** A sealed value as stored (JSON): which key sealed it, and the pieces GCM needs. */
export interface SealedValue {
  alg: 'AES-256-GCM';
  /** Identifies the key that sealed it (a hash prefix of the key, never the key). */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

export class SecretKeyFileError extends Error {}

/** The value was sealed with another key, or changed since. */
export class SealedValueError extends Error {}

export class SecretBox {
  /** Names this key in sealed values, so a replica with another key file can say so. */
  readonly kid: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new SecretKeyFileError('the secrets key must be 32 bytes');
    this.kid = createHash('sha256').update(key).digest('hex').slice(0, 16);
  }

  /**
   * Reads --secrets-key-file: 32 random bytes written as 64 hex digits or base64 (`openssl rand
   * -hex 32 > file`). Surrounding whitespace is ignored. A file others may read is refused: it
   * unlocks every private key in etcd.
   */
  static fromFile(path: string): SecretBox {
    let text: string;
    try {
      if ((statSync(path).mode & 0o077) !== 0) throw new SecretKeyFileError(`${path} is readable by others: chmod 600 it`);
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      if (err instanceof SecretKeyFileError) throw err;
      throw new SecretKeyFileError(`cannot read ${path}: ${(err as Error).message}`);
    }
    let key: Buffer | undefined;
    if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
    else if (/^[A-Za-z0-9+/]{43}=$/.test(text)) key = Buffer.from(text, 'base64');
    if (key === undefined || key.length !== 32)
      throw new SecretKeyFileError(`${path} must hold 32 random bytes as 64 hex digits or base64 (make one with: openssl rand -hex 32)`);
    return new SecretBox(key);
  }

  seal(plaintext: string | Buffer, id: string): SealedValue {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { alg: 'AES-256-GCM', kid: this.kid, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
  }

  open(sealed: SealedValue, id: string): Buffer {
    if (sealed.alg !== 'AES-256-GCM') throw new SealedValueError(`unknown algorithm ${String(sealed.alg)}`);
    if (sealed.kid !== this.kid)
      throw new SealedValueError(
        `sealed with secrets key ${sealed.kid}, but this control plane's --secrets-key-file is ${this.kid}: give every replica the same file`,
      );
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(Buffer.from(id, 'utf8'));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]);
    } catch {
      throw new SealedValueError(`the sealed value ${id} does not open: it was changed or belongs to another id`);
    }
  }
}
