/**
 * The one place that turns a pool's config into its balancer. Callers (the routing table now,
 * health/slow start later) pass the hosts that may take traffic with their effective weights, and
 * call again whenever that set or a weight changes: rebuilds are cheap (O(n)), except the hash
 * tables — a ring of 100 points per backend or a 65,537-entry maglev table — which take a few
 * milliseconds at 10,000 backends.
 */
import { DEFAULT_HASH_ON, type Pool } from '@lb/shared';
import type { Clock, Random } from '../runtime/clock.js';
import { EmptyBalancer, type Balancer } from './balancer.js';
import { EarliestDeadlineFirst } from './edf.js';
import { hashKeyReader } from './hash-key.js';
import type { Host } from './host.js';
import { IpHash } from './ip-hash.js';
import { LeastLoad, connectionsScore, responseTimeScore, seedLatencies, weightedConnectionsScore } from './least-load.js';
import { Maglev } from './maglev.js';
import { PowerOfTwoChoices } from './p2c.js';
import { RandomBalancer, WeightedRandom } from './random.js';
import { ResourceBased } from './resource-based.js';
import { RingHash } from './ring-hash.js';
import { RoundRobin } from './round-robin.js';
import { SmoothWeightedRoundRobin } from './smooth-weighted-round-robin.js';
import { DEFAULT_STICKY_SECRET, StickyBalancer } from './sticky.js';

export interface BalancerDeps {
  random: Random;
  clock: Clock;
  /** The pool's name: sticky cookies are signed for one pool. */
  poolName?: string;
  /** Shared by every data plane so each honours the others' sticky cookies. */
  stickySecret?: string | undefined;
}

/** The parts of a pool's config a balancer reads. */
export type BalancerConfig = Pick<Pool, 'algorithm' | 'hashOn' | 'consistentHash' | 'p2c' | 'leastResponseTime' | 'resourceBased' | 'sticky'>;

/** Beyond this many hosts nginx's smooth WRR (O(n) per pick when not precomputed) gives way to EDF. */
const SMOOTH_WRR_LIVE_MAX = 128;

/** Weights as integers for the round-robin schedules: fractional (slow-start) weights are scaled. */
function integerWeights(raw: readonly number[]): number[] {
  if (raw.every((w) => Number.isInteger(w))) return [...raw];
  return raw.map((w) => Math.max(1, Math.round(w * 100)));
}

/**
 * The slow-start factors of an algorithm that ignores weights, while any host ramps up: such a
 * pool runs its weighted twin over the factors until every backend is at full share, so a new
 * backend is eased in whatever the algorithm (as Envoy, HAProxy and NGINX do for round robin).
 * undefined when no host ramps.
 */
function rampWeights(items: readonly Host[]): number[] | undefined {
  if (items.every((h) => h.ramp === undefined)) return undefined;
  return items.map((h) => h.ramp ?? 1);
}

/**
 * The balancer the pool's `algorithm` names over `hosts` (hosts with weight ≤ 0 are dropped).
 * Claims the hosts' runtimes for algorithms that track load; any earlier claim is released.
 */
export function createBalancer<H extends Host>(pool: BalancerConfig, hosts: readonly H[], deps: BalancerDeps): Balancer<H> {
  for (const h of hosts) {
    h.runtime.tracker = null;
    h.runtime.slot = -1;
  }
  const items = hosts.filter((h) => h.weight > 0);
  if (items.length === 0) return new EmptyBalancer<H>();
  const inner = createAlgorithm(pool, items, deps);
  if (pool.sticky === undefined) return inner;
  return new StickyBalancer(inner, items, pool.sticky, deps.poolName ?? '', deps.stickySecret ?? DEFAULT_STICKY_SECRET);
}

/** Hash tables are built in id order, so every node maps keys alike whatever order it lists hosts in. */
function byId<H extends Host>(items: readonly H[]): H[] {
  return [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function createAlgorithm<H extends Host>(pool: BalancerConfig, items: readonly H[], deps: BalancerDeps): Balancer<H> {
  const { random } = deps;
  switch (pool.algorithm) {
    case 'round_robin': {
      const ramp = rampWeights(items);
      return ramp === undefined ? new RoundRobin(items, random) : new SmoothWeightedRoundRobin(items, integerWeights(ramp), { random });
    }
    case 'weighted_round_robin': {
      const weights = integerWeights(items.map((h) => h.weight));
      const smooth = new SmoothWeightedRoundRobin(items, weights, { random });
      return smooth.live && items.length > SMOOTH_WRR_LIVE_MAX ? new EarliestDeadlineFirst(items, weights, random()) : smooth;
    }
    case 'random': {
      const ramp = rampWeights(items);
      return ramp === undefined ? new RandomBalancer(items, random) : new WeightedRandom(items, ramp, random);
    }
    case 'weighted_random':
      return new WeightedRandom(
        items,
        items.map((h) => h.weight),
        random,
      );
    case 'least_connections': {
      if (rampWeights(items) === undefined) return new LeastLoad(items, connectionsScore, random);
      // (in flight + 1) ÷ ramp: a ramping backend counts as that much busier.
      return new LeastLoad(
        items.map((h) => ({ ...h, weight: h.ramp ?? 1 })),
        weightedConnectionsScore,
        random,
      );
    }
    case 'weighted_least_connections':
      return new LeastLoad(items, weightedConnectionsScore, random);
    case 'p2c':
      return new PowerOfTwoChoices(items, pool.p2c?.bias ?? 1, random);
    case 'least_response_time':
      seedLatencies(items);
      return new LeastLoad(items, responseTimeScore, random);
    case 'ip_hash': {
      const sorted = byId(items);
      return new IpHash(
        sorted,
        sorted.map((h) => h.weight),
        random,
      );
    }
    case 'consistent_hash':
      return new RingHash(
        byId(items),
        hashKeyReader(pool.hashOn ?? DEFAULT_HASH_ON),
        {
          virtualNodes: pool.consistentHash?.virtualNodes ?? 100,
          hashBalanceFactor: pool.consistentHash?.hashBalanceFactor,
        },
        random,
      );
    case 'maglev':
      return new Maglev(byId(items), hashKeyReader(pool.hashOn ?? DEFAULT_HASH_ON), random);
    case 'resource_based':
      return new ResourceBased(items, (pool.resourceBased?.minWeightPercent ?? 10) / 100, random);
  }
}

/** What the forwarder must measure for a pool's algorithm; undefined when nothing. */
export interface PoolFeedback {
  /** Record time to response headers with this peak-EWMA decay (ms). */
  readonly latencyDecayMs: number | undefined;
  /** Read this response header (lower case) as the backend's load… */
  readonly loadHeader: string | undefined;
  /** …smoothed over this window (ms). */
  readonly loadDecayMs: number;
}

export function poolFeedback(pool: BalancerConfig): PoolFeedback | undefined {
  if (pool.algorithm === 'least_response_time') {
    return { latencyDecayMs: pool.leastResponseTime?.decayMs ?? 10_000, loadHeader: undefined, loadDecayMs: 0 };
  }
  if (pool.algorithm === 'resource_based') {
    return {
      latencyDecayMs: undefined,
      loadHeader: (pool.resourceBased?.header ?? 'x-backend-load').toLowerCase(),
      loadDecayMs: pool.resourceBased?.decayMs ?? 5_000,
    };
  }
  return undefined;
}
