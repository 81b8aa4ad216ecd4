import type { Algorithm } from '@lb/shared';
import type { Random } from '../runtime/clock.js';
import { EmptyBalancer, type Balancer } from './balancer.js';
import { RoundRobin } from './round-robin.js';
import { SmoothWeightedRoundRobin } from './smooth-weighted-round-robin.js';

/** Builds the balancer a pool's `algorithm` names over the items it may pick (already filtered). */
export function createBalancer<T extends { weight: number }>(algorithm: Algorithm, items: readonly T[], random: Random): Balancer<T> {
  if (items.length === 0) return new EmptyBalancer<T>();
  switch (algorithm) {
    case 'round_robin':
      return new RoundRobin(items, random);
    case 'weighted_round_robin':
      return new SmoothWeightedRoundRobin(items, items.map((i) => i.weight), { random });
  }
}
