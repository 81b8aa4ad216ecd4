/** KeyStore on etcd: `<prefix>/secrets/keys/<public key id>` → the sealed key as JSON. */
import type { Etcd3 } from 'etcd3';
import { guarded } from '../store/etcd-client.js';
import { EtcdKeys } from '../store/keys.js';
import type { KeyStore, StoredKey } from './key-store.js';

export class EtcdKeyStore implements KeyStore {
  private readonly keys: EtcdKeys;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly deadlineMs = 4_000,
  ) {
    this.keys = new EtcdKeys(prefix);
  }

  put(key: StoredKey): Promise<void> {
    return guarded(`storing private key ${key.id.slice(0, 12)}`, this.deadlineMs, async () => {
      // Create-only: a key pair is stored once, and a concurrent writer storing the same pair loses nothing.
      const at = this.keys.privateKey(key.id);
      await this.client
        .if(at, 'Create', '==', 0)
        .then(this.client.put(at).value(JSON.stringify(key)))
        .commit();
    });
  }

  get(id: string): Promise<StoredKey | undefined> {
    return guarded(`reading private key ${id.slice(0, 12)}`, this.deadlineMs, async () => {
      const value = await this.client.get(this.keys.privateKey(id)).string();
      return value === null ? undefined : (JSON.parse(value) as StoredKey);
    });
  }

  has(ids: readonly string[]): Promise<Set<string>> {
    return guarded('looking up private keys', this.deadlineMs, async () => {
      const found = new Set<string>();
      await Promise.all(
        ids.map(async (id) => {
          if ((await this.client.get(this.keys.privateKey(id)).exists()) === true) found.add(id);
        }),
      );
      return found;
    });
  }
}
