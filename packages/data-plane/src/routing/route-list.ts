/**
 * The routes one Host can reach, in match order, with a lookup that does not scan them all.
 * Match order (built by the routing table): host tier first (exact, then wildcards by longer
 * suffix, then any host), longest path prefix first within a tier, then routes with more
 * conditions (methods, headers, query) first, then name. The first route in that order whose
 * prefix starts the path and whose conditions hold wins.
 *
 * Within a tier the winner is the route with the longest prefix that starts the path, so a tier
 * with many routes is indexed by prefix length: one map per distinct length, looked up longest
 * first with the path cut to that length. That costs one lookup per distinct prefix length
 * (usually a handful) instead of one comparison per route. Small tiers keep the plain scan, which
 * is faster for a few entries.
 */
import { conditionsHold, type RouteRequest } from './route-conditions.js';
import type { CompiledRoute } from './routing-table.js';

/** Tiers with more routes than this are indexed. */
const SCAN_LIMIT = 8;

interface Tier {
  /** Set for small tiers: routes in match order. */
  readonly scan: readonly CompiledRoute[] | undefined;
  /** Distinct prefix lengths, longest first, and per length the routes per prefix, in match order. */
  readonly lengths: readonly number[];
  readonly byPrefix: readonly ReadonlyMap<string, readonly CompiledRoute[]>[];
}

/** Whether `route` takes the request (its path prefix already matched). */
function takes(route: CompiledRoute, req: RouteRequest | undefined): boolean {
  const c = route.conditions;
  return c === undefined || (req !== undefined && conditionsHold(c, req));
}

function buildTier(routes: readonly CompiledRoute[]): Tier {
  if (routes.length <= SCAN_LIMIT) return { scan: routes, lengths: [], byPrefix: [] };
  const lengths: number[] = [];
  const byPrefix: Map<string, CompiledRoute[]>[] = [];
  for (const route of routes) {
    const len = route.pathPrefix.length;
    let i = lengths.indexOf(len);
    if (i < 0) {
      i = lengths.length;
      lengths.push(len);
      byPrefix.push(new Map());
    }
    // Routes come in match order: a prefix's candidates keep it.
    const candidates = byPrefix[i]!.get(route.pathPrefix);
    if (candidates === undefined) byPrefix[i]!.set(route.pathPrefix, [route]);
    else candidates.push(route);
  }
  // Routes are sorted longest prefix first within a tier, so lengths already are; sort anyway.
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]!);
  return { scan: undefined, lengths: order.map((i) => lengths[i]!), byPrefix: order.map((i) => byPrefix[i]!) };
}

export class RouteList {
  private readonly tiers: readonly Tier[];

  /** `routes` must be in match order; `tierOf` gives the host tier the order was sorted by. */
  constructor(
    readonly routes: readonly CompiledRoute[],
    tierOf: (route: CompiledRoute) => number,
  ) {
    const tiers: Tier[] = [];
    let start = 0;
    for (let i = 1; i <= routes.length; i++) {
      if (i === routes.length || tierOf(routes[i]!) !== tierOf(routes[start]!)) {
        tiers.push(buildTier(routes.slice(start, i)));
        start = i;
      }
    }
    this.tiers = tiers;
  }

  get size(): number {
    return this.routes.length;
  }

  /** The first route in match order whose prefix starts the path of `url` (`/path?query`) and whose conditions `req` meets. */
  find(url: string, req?: RouteRequest): CompiledRoute | undefined {
    const q = url.indexOf('?');
    const pathLength = q < 0 ? url.length : q;
    const tiers = this.tiers;
    for (let t = 0; t < tiers.length; t++) {
      const tier = tiers[t]!;
      const scan = tier.scan;
      if (scan !== undefined) {
        for (let i = 0; i < scan.length; i++) {
          const route = scan[i]!;
          const prefix = route.pathPrefix;
          if (prefix.length <= pathLength && url.startsWith(prefix) && takes(route, req)) return route;
        }
        continue;
      }
      const lengths = tier.lengths;
      for (let i = 0; i < lengths.length; i++) {
        const len = lengths[i]!;
        if (len > pathLength) continue;
        const candidates = tier.byPrefix[i]!.get(len === url.length ? url : url.slice(0, len));
        if (candidates === undefined) continue;
        for (let k = 0; k < candidates.length; k++) if (takes(candidates[k]!, req)) return candidates[k];
      }
    }
    return undefined;
  }
}
