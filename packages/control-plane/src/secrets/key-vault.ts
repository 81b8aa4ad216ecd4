/**
 * Private keys of certificate resources: checked against their certificate, sealed with the
 * secrets key and stored (key-store.ts), and opened again only to push them over mutual TLS or to
 * present a client certificate in a health probe. Nothing here logs or returns a key; error
 * messages describe the key (its type), never quote it.
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { publicKeyId } from '@lb/shared';
import type { KeyStore } from './key-store.js';
import type { SecretBox } from './secret-box.js';

/** A private key that passed every check, ready to store. */
export interface CheckedKey {
  id: string;
  pem: string;
}

export type KeyCheck = { ok: true; key: CheckedKey } | { ok: false; message: string };

/** The vault has no secrets key: private keys can be neither stored nor opened. */
export class NoSecretsKeyError extends Error {
  constructor() {
    super('this control plane has no --secrets-key-file, so it can neither store nor push private keys');
  }
}

/** Parses `pem` and checks that it is the private key of `leaf`. */
export function checkPrivateKey(pem: string, leaf: X509Certificate): KeyCheck {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(pem) || /passphrase/i.test((err as Error).message);
    return {
      ok: false,
      message: encrypted
        ? 'is encrypted with a passphrase: send it decrypted (it is encrypted at rest here)'
        : 'is not a PEM private key (PKCS#8, PKCS#1 or SEC1)',
    };
  }
  if (!leaf.checkPrivateKey(key)) {
    return { ok: false, message: `does not match the certificate: it is a ${key.asymmetricKeyType ?? 'unknown'} key for another public key` };
  }
  // Stored as PKCS#8 whatever it came as, so every node reads one format.
  return { ok: true, key: { id: publicKeyId(leaf.publicKey), pem: key.export({ type: 'pkcs8', format: 'pem' }).toString() } };
}

export class KeyVault {
  constructor(
    private readonly store: KeyStore,
    private readonly box: SecretBox | undefined,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Whether private keys can be stored and opened here (--secrets-key-file given). */
  get enabled(): boolean {
    return this.box !== undefined;
  }

  async put(key: CheckedKey): Promise<void> {
    if (this.box === undefined) throw new NoSecretsKeyError();
    await this.store.put({ id: key.id, storedAt: this.now().toISOString(), sealed: this.box.seal(key.pem, key.id) });
  }

  /** Which of `ids` have a stored key. */
  has(ids: readonly string[]): Promise<Set<string>> {
    return ids.length === 0 ? Promise.resolve(new Set()) : this.store.has(ids);
  }

  /** The key's PEM, or undefined when none is stored. Throws NoSecretsKeyError, or SealedValueError when it does not open. */
  async open(id: string): Promise<string | undefined> {
    if (this.box === undefined) throw new NoSecretsKeyError();
    const stored = await this.store.get(id);
    return stored === undefined ? undefined : this.box.open(stored.sealed, id).toString('utf8');
  }
}
