/**
 * What the streams push: the merged config of a version plus the key material it needs — the
 * private keys of the certificates it serves or presents (opened from the key vault) and the
 * shared session-ticket key. Keys are opened here, once per change, never per node; whether a
 * node may receive them is the stream's to decide (push-security.ts). A key that cannot be opened
 * is left out with the reason, which the node's NACK then shows in GET /v1/nodes.
 *
 * The same view is published again (a new view with another `secretsId`) when only the secrets
 * changed: a rotated ticket key, or a key that could not be opened before. Secrets are not
 * resources: they are not in the digest, and every config push carries all of them.
 */
import { createHash } from 'node:crypto';
import { parseCertificateChain, publicKeyId, type Config, type Logger, type TlsSecrets } from '@lb/shared';
import type { PushViewSource } from '../push/merged-config.js';
import { type PushView, withSecrets } from '../push/push-view.js';
import type { KeyVault } from '../secrets/key-vault.js';
import { CoalescedRefresh } from '../store/coalesced-refresh.js';
import { certificatesNeedingKeys } from './certificate-details.js';
import type { TicketKeySource } from './ticket-keys.js';
import { Listeners } from '../push/listeners.js';

export interface SnapshotSecretsOptions {
  config: PushViewSource;
  vault: KeyVault;
  /** Absent: no shared ticket key (each node then uses its own). */
  tickets?: TicketKeySource;
  logger: Logger;
}

/** The private keys `config` needs, by certificate name; failures become `unavailableReason`. */
export async function openKeys(config: Config, vault: KeyVault, cache: Map<string, string>): Promise<Pick<TlsSecrets, 'privateKeys' | 'unavailableReason'>> {
  const privateKeys: TlsSecrets['privateKeys'] = [];
  const problems: string[] = [];
  for (const name of certificatesNeedingKeys(config)) {
    const resource = config.certificates?.[name];
    const parsed = resource === undefined ? undefined : parseCertificateChain(resource.certificate);
    if (parsed === undefined || !parsed.ok) continue; // validation keeps such configs from being committed
    const id = publicKeyId(parsed.chain[0]!.publicKey);
    let pem = cache.get(id);
    if (pem === undefined) {
      try {
        pem = await vault.open(id);
      } catch (err) {
        problems.push(`the key of certificate "${name}" cannot be opened: ${(err as Error).message}`);
        continue;
      }
      if (pem === undefined) {
        problems.push(`the key of certificate "${name}" is not stored`);
        continue;
      }
      cache.set(id, pem);
    }
    privateKeys.push({ certificate: name, privateKeyPem: pem });
  }
  return { privateKeys, unavailableReason: problems.join('; ') };
}

export class SnapshotSecrets implements PushViewSource {
  private current: PushView | undefined;
  /** The view `current` was made from. */
  private wraps: PushView | undefined;
  private readonly listeners: Listeners<PushView>;
  private readonly offs: Array<() => void> = [];
  /** Opened keys by public key id: keys are immutable, so one open per key. */
  private readonly opened = new Map<string, string>();
  private stopped = false;
  /** A change while a build runs builds once more after it, for the newest view. */
  private readonly builds = new CoalescedRefresh(
    async () => {
      await this.buildOnce();
      return true;
    },
    () => this.stopped,
  );

  constructor(private readonly options: SnapshotSecretsOptions) {
    this.listeners = new Listeners(options.logger, 'config listener failed');
  }

  start(): void {
    this.offs.push(this.options.config.subscribe(() => void this.builds.request()));
    if (this.options.tickets !== undefined) this.offs.push(this.options.tickets.subscribe(() => void this.builds.request()));
    void this.builds.request();
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs) off();
    this.listeners.clear();
  }

  latest(): PushView | undefined {
    return this.current;
  }

  /**
   * A recent view without secrets: a reconnecting node runs its resources, but which secrets it
   * holds is unknown, so the stream sends it the current ones (an empty delta with them).
   */
  find(historyId: string, version: number, digest: string): PushView | undefined {
    return this.options.config.find(historyId, version, digest);
  }

  subscribe(listener: (view: PushView) => void): () => void {
    return this.listeners.add(listener);
  }

  private async buildOnce(): Promise<void> {
    const base = this.options.config.latest();
    if (base === undefined || this.stopped) return;
    const keys = await openKeys(base.config, this.options.vault, this.opened);
    if (keys.unavailableReason !== '')
      this.options.logger.error({ version: base.version, reason: keys.unavailableReason }, 'a version needs private keys this control plane cannot push');
    const ticket = this.options.tickets?.current();
    const secrets: TlsSecrets = { ...keys, sessionTicketKeys: ticket === undefined ? [] : [ticket] };
    const secretsId = secretsIdOf(secrets);
    const before = this.current;
    if (before !== undefined && this.wraps === base && before.secretsId === secretsId) return;
    this.wraps = base;
    const next = withSecrets(base, secrets, secretsId);
    this.current = next;
    this.listeners.notify(next);
  }
}

/** '' for no secrets at all; otherwise a hash of everything a node would hold. */
export function secretsIdOf(secrets: TlsSecrets): string {
  if (secrets.privateKeys.length === 0 && secrets.sessionTicketKeys.length === 0 && secrets.unavailableReason === '') return '';
  const hash = createHash('sha256');
  hash.update(secrets.unavailableReason).update('\0');
  for (const k of secrets.privateKeys) hash.update(k.certificate).update('\0').update(k.privateKeyPem).update('\0');
  for (const k of secrets.sessionTicketKeys) hash.update(k).update('\0');
  return hash.digest('base64url');
}
