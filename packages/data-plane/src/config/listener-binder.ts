/**
 * The seam between the snapshot applier and the listeners it makes the node open: the applier
 * compiles what a snapshot wants (ListenerPlan, TLS included) and asks a ListenerBinder
 * (traffic/listener-set.ts) to open it. Binding is the one step of applying a snapshot that waits
 * (a port), so it runs before the routing table is swapped: a port that cannot be bound NACKs the
 * snapshot and leaves everything as it was.
 */
import type { ListenerProtocol } from '@lb/shared';
import type { L4ListenerSettings } from '../l4/l4-settings.js';
import type { ListenerTlsPlan } from '../tls/listener-tls.js';

/** One configured listener as a snapshot wants it. */
export interface ListenerPlan {
  readonly name: string;
  readonly port: number;
  readonly protocol: ListenerProtocol;
  /** Set for https. */
  readonly tls: ListenerTlsPlan | undefined;
  /** Set for tcp and tls-passthrough (l4/l4-settings.ts). */
  readonly l4?: L4ListenerSettings | undefined;
  /** Plain HTTP that also takes HTTP/2 with prior knowledge (h2c); absent: false. */
  readonly h2c?: boolean;
}

/** A listener as /config shows it. */
export interface ListenerView {
  name: string;
  protocol: ListenerProtocol;
  address: string;
  certificates?: ReadonlyArray<{ name: string; fingerprint: string; names: string[] }>;
}

export interface ListenerBinder {
  /** Whether applying `plans` opens a port that is not open yet (or moves one). */
  needsBind(plans: readonly ListenerPlan[]): boolean;
  /**
   * Opens what `plans` add or move, without serving it yet. Resolves with the reason when a port
   * cannot be bound (and closes what it opened: nothing changed), undefined on success.
   */
  bind(plans: readonly ListenerPlan[]): Promise<string | undefined>;
  /**
   * Makes the listeners what `plans` say, at once: ports bound by bind() start serving, TLS
   * contexts are replaced (connections already open keep theirs), listeners no longer named stop
   * accepting and drain.
   */
  settle(plans: readonly ListenerPlan[]): void;
  describe(): ListenerView[];
}
