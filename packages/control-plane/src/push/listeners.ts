import type { Logger } from '@lb/shared';

/**
 * The callbacks told of each new value of a source (the merged config, the config with its
 * secrets, the active rollout). Each is called on its own: one that throws is logged, and the
 * others are still told. A callback may unsubscribe from inside its call.
 */
export class Listeners<T> {
  private readonly callbacks = new Set<(value: T) => void>();

  constructor(
    private readonly logger: Logger,
    /** The log message for a callback that threw. */
    private readonly failure: string,
  ) {}

  /** Adds `callback`; the function returned removes it. */
  add(callback: (value: T) => void): () => void {
    this.callbacks.add(callback);
    return () => {
      this.callbacks.delete(callback);
    };
  }

  clear(): void {
    this.callbacks.clear();
  }

  notify(value: T): void {
    for (const callback of [...this.callbacks]) {
      try {
        callback(value);
      } catch (err) {
        this.logger.error({ err }, this.failure);
      }
    }
  }
}
