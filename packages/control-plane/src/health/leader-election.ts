/**
 * Which replica runs the health checks: etcd3's Election under <prefix>/election/health/, one
 * campaign per replica on its own lease (TTL `ttlSeconds`, kept alive every third of it). When the
 * leader dies its lease expires and the next candidate in line is elected; a leader that shuts down
 * resigns first, so hand-over is immediate. A campaign that fails (lease lost: etcd unreachable
 * longer than the TTL) drops leadership at once and campaigns again.
 *
 * Leadership is also a write fence: `fence()` names the election key and its create revision,
 * and every health write compares them in its transaction, so an old leader can never overwrite a
 * new one even before it notices it lost.
 */
import type { Campaign, Etcd3 } from 'etcd3';
import type { Logger } from '@lb/shared';
import type { LeaderFence } from './health-store.js';
import { EtcdKeys } from '../store/keys.js';

export interface Leadership {
  readonly isLeader: boolean;
  /** Undefined unless leader. */
  fence(): LeaderFence | undefined;
  /** Called with true when elected and false when leadership ends, never twice in a row with the same value. */
  onChange(listener: (leader: boolean) => void): void;
}

export interface LeaderElectionOptions {
  client: Etcd3;
  prefix: string;
  /** Recorded as the campaign value: who leads. */
  replica: string;
  logger: Logger;
  /** Which election (a key below the election namespace): `health` (the default) or `rollouts`. */
  name?: string;
  /** Lease TTL; a dead leader is replaced after about this long. Default 3 (etcd's minimum is about 2). */
  ttlSeconds?: number;
  /** Wait before campaigning again after a failed campaign. Default 1000. */
  retryDelayMs?: number;
}

export class LeaderElection implements Leadership {
  private campaign: Campaign | undefined;
  private leaderFence: LeaderFence | undefined;
  private readonly listeners: Array<(leader: boolean) => void> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: LeaderElectionOptions) {}

  get isLeader(): boolean {
    return this.leaderFence !== undefined;
  }

  fence(): LeaderFence | undefined {
    return this.leaderFence;
  }

  onChange(listener: (leader: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    if (this.stopped || this.campaign) return;
    const { client, prefix, replica, logger } = this.options;
    const election = client.namespace(new EtcdKeys(prefix).electionNamespace).election(this.options.name ?? 'health', this.options.ttlSeconds ?? 3);
    const campaign = election.campaign(replica);
    this.campaign = campaign;
    campaign.on('elected', () => {
      void (async () => {
        try {
          const key = await campaign.getCampaignKey();
          const res = await client.get(key).exec();
          const kv = res.kvs[0];
          if (!kv || this.campaign !== campaign) throw new Error('the election key vanished right after the election');
          this.leaderFence = { key, createRevision: String(kv.create_revision) };
          logger.info({ key, election: this.options.name ?? 'health' }, 'elected leader');
          this.notify(true);
        } catch (err) {
          this.fail(campaign, err as Error);
        }
      })();
    });
    campaign.on('error', (err) => this.fail(campaign, err));
  }

  private fail(campaign: Campaign, err: Error): void {
    if (this.campaign !== campaign) return;
    this.campaign = undefined;
    const was = this.isLeader;
    this.leaderFence = undefined;
    if (was) this.notify(false);
    campaign.resign().catch(() => undefined);
    if (this.stopped) return;
    this.options.logger.warn({ err: err.message, election: this.options.name ?? 'health' }, 'election failed; campaigning again');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), this.options.retryDelayMs ?? 1_000);
  }

  private notify(leader: boolean): void {
    for (const l of this.listeners) {
      try {
        l(leader);
      } catch (err) {
        this.options.logger.error({ err }, 'leadership listener failed');
      }
    }
  }

  /** Stops leading (listeners hear false first) and resigns so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const campaign = this.campaign;
    this.campaign = undefined;
    if (this.leaderFence !== undefined) {
      this.leaderFence = undefined;
      this.notify(false);
    }
    await campaign
      ?.resign()
      .catch((err: unknown) => this.options.logger.warn({ err: (err as Error).message }, 'could not resign; the lease expires by itself'));
  }
}

/** For unit tests and single-process use: leadership set by hand. */
export class StaticLeadership implements Leadership {
  private leader = false;
  private readonly listeners: Array<(leader: boolean) => void> = [];

  get isLeader(): boolean {
    return this.leader;
  }

  fence(): LeaderFence | undefined {
    return this.leader ? { key: 'static', createRevision: '1' } : undefined;
  }

  onChange(listener: (leader: boolean) => void): void {
    this.listeners.push(listener);
  }

  set(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    for (const l of this.listeners) l(leader);
  }
}
