/**
 * The seam where central health checking plugs into the push path (health/health-feed.ts is the
 * real source). The stream server sends `full()` right after each Hello and every update from
 * `subscribe` afterwards.
 */
import type { BackendHealth } from '@lb/shared';

export interface HealthState {
  /** Health has its own revision, independent of config versions (invariant 3). */
  revision: number;
  backends: BackendHealth[];
}

export interface HealthDelta extends HealthState {
  /** true: replaces everything the node holds; false: only the backends that changed. */
  full: boolean;
}

export interface HealthSource {
  /**
   * Everything known, or undefined until this replica has read health once (just started, etcd
   * not answering yet). A node is sent nothing meanwhile and keeps what it holds — its cache, or
   * what the control plane before this one pushed — instead of being told that nothing is known,
   * which would make every backend it held unhealthy eligible again.
   */
  full(): HealthState | undefined;
  subscribe(listener: (delta: HealthDelta) => void): () => void;
}

/** No health checking (unit tests): revision 0, nothing known, never changes. */
export class NoHealthSource implements HealthSource {
  full(): HealthState {
    return { revision: 0, backends: [] };
  }

  subscribe(): () => void {
    return () => undefined;
  }
}
