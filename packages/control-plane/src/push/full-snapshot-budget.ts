/**
 * Admission of full snapshots. After a control-plane restart a thousand nodes may say Hello within
 * a second, and each that needs a full snapshot costs a copy of it in gRPC's buffers until sent.
 * Full snapshots in flight (sent, not yet answered) share a byte budget; streams over it wait in
 * line, first come first served, and are admitted as answers come back. Deltas, health updates and
 * everything the streams already held keep flowing meanwhile, so admitting newcomers never starves
 * the others.
 */
interface Waiting {
  size: number;
  grant: () => void;
}

export class FullSnapshotBudget {
  private used = 0;
  private readonly waiting: Waiting[] = [];

  /** @param bytes budget; a snapshot larger than it is still admitted when nothing else is in flight. */
  constructor(private readonly bytes: number) {}

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
