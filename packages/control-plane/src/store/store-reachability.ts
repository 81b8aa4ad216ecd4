/**
 * Whether etcd answers, as /readyz reports it without an etcd call per probe: pinged in the
 * background, and taken as gone only once it has not answered for `graceMs`. A replica keeps its
 * streams, pushes and what it holds while etcd is briefly away (a restart, a leader election), so
 * its load balancer must not pull every replica at once for that; an etcd that stays away does
 * turn it unready.
 */
export interface Readiness {
  ready: boolean;
  /** Why not, when not. */
  reason?: string;
}

export interface StoreReachabilityOptions {
  /** Resolves when the store answers (ConfigStore.ping). */
  ping: () => Promise<void>;
  /** Time etcd may go unanswered before the replica says it is not ready. Default 10000. */
  graceMs?: number;
  /** Time between pings. Default 1000. */
  intervalMs?: number;
  now?: () => number;
}

export class StoreReachability {
  private lastAnswer: number | undefined;
  private lastError = 'etcd has not answered yet';
  private timer: NodeJS.Timeout | undefined;
  private pinging = false;
  private readonly now: () => number;

  constructor(private readonly options: StoreReachabilityOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One ping (skipped while one is under way). */
  async check(): Promise<void> {
    if (this.pinging) return;
    this.pinging = true;
    try {
      await this.options.ping();
      this.lastAnswer = this.now();
    } catch (err) {
      this.lastError = (err as Error).message;
    } finally {
      this.pinging = false;
    }
  }

  state(): Readiness {
    const graceMs = this.options.graceMs ?? 10_000;
    if (this.lastAnswer !== undefined && this.now() - this.lastAnswer <= graceMs) return { ready: true };
    const since = this.lastAnswer === undefined ? 'since start' : `for ${this.now() - this.lastAnswer} ms`;
    return { ready: false, reason: `etcd has not answered ${since}: ${this.lastError}` };
  }
}
