import type { RoutingTable } from './routing-table.js';

/**
 * Where the request path reads the current routing table. The snapshot applier implements it and
 * swaps `current` in one assignment; a request reads it once, so it never sees a half-applied table.
 */
export interface TableSource {
  /** undefined until a first snapshot is applied. */
  readonly current: RoutingTable | undefined;
}
