/**
 * Admission of large pushes. After a control-plane restart a thousand nodes may say Hello within a
 * second, and a config replaced whole makes a large delta for every node; each such push costs a
 * copy in gRPC's buffers until sent (a thousand copies of 700 KiB is 700 MB). Large pushes in
 * flight (sent, not yet answered) share a byte budget; streams over it wait in line, first come
 * first served, and are admitted as answers come back. Small deltas, health updates and everything
 * the streams already held keep flowing meanwhile, so admitting newcomers never starves the others.
 */
interface Waiting {
  size: number;
  grant: () => void;
}

export class PushBudget {
  private used = 0;
  private readonly waiting: Waiting[] = [];

  /**
   * @param bytes budget; a push larger than it is still admitted when nothing else is in flight.
   * @param freeBelow pushes smaller than this need no admission (a one-pool delta).
   */
  constructor(
    private readonly bytes: number,
    readonly freeBelow = 64 * 1024,
  ) {}

  /**
   * Asks for `size` bytes: `grant` is called (maybe at once) when they are taken for the caller,
   * who gives them back with give(size) once the snapshot is answered or will never be. Returns a
   * function that withdraws a request not granted yet.
   */
  request(size: number, grant: () => void): () => void {
    const entry = { size, grant };
    this.waiting.push(entry);
    this.admit();
    return () => {
      const at = this.waiting.indexOf(entry);
      if (at >= 0) this.waiting.splice(at, 1);
    };
  }

  give(size: number): void {
    this.used = Math.max(0, this.used - size);
    this.admit();
  }

  private admit(): void {
    while (this.waiting.length > 0) {
      const head = this.waiting[0]!;
      if (this.used > 0 && this.used + head.size > this.bytes) return;
      this.waiting.shift();
      this.used += head.size;
      head.grant();
    }
  }

  get inFlight(): number {
    return this.used;
  }

  get queued(): number {
    return this.waiting.length;
  }
}
