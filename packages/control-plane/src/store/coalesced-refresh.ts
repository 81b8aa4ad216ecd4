/**
 * Re-reading a store one pass at a time. A refresh asked for while a pass runs makes it run once
 * more afterwards, because the running pass may have read the store before the change the caller
 * knows of; any number of requests during a pass fold into that one extra pass.
 */
export class CoalescedRefresh {
  private running = false;
  private again = false;

  /**
   * @param pass one read; resolves false when it failed and the caller has scheduled its own
   *   retry (pending requests are then left to that retry).
   * @param stopped checked between passes: a stopped owner runs no further pass.
   */
  constructor(
    private readonly pass: () => Promise<boolean>,
    private readonly stopped: () => boolean,
  ) {}

  /** Runs the passes, or folds into the running ones (then resolves at once). */
  async request(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        if (!(await this.pass())) break;
      } while (this.again && !this.stopped());
    } finally {
      this.running = false;
    }
  }
}
