/** Fixtures for the balancer tests: seeded randomness, hosts and fake requests. */
import type { PickContext } from '../src/balancer/balancer.js';
import { BackendRuntime, type Host } from '../src/balancer/host.js';
import { RequestPickContext } from '../src/balancer/request-context.js';
import type { Clock } from '../src/runtime/clock.js';

/** mulberry32: a small seeded PRNG, so "random" tests are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const fixedClock: Clock = { now: () => 0 };

export type TestHost = Host<string>;

/** Hosts named by id; weights default to 1. Runtimes are fresh unless given. */
export function hosts(ids: readonly string[], weights: readonly number[] = [], runtimes: ReadonlyMap<string, BackendRuntime> = new Map()): TestHost[] {
  return ids.map((id, i) => ({ backend: id, id, weight: weights[i] ?? 1, runtime: runtimes.get(id) ?? new BackendRuntime() }));
}

export function range(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/** A request as the forwarder would present it. */
export function request(options: { ip?: string; headers?: Record<string, string>; url?: string } = {}): RequestPickContext {
  const raw: string[] = [];
  for (const [k, v] of Object.entries(options.headers ?? {})) raw.push(k, v);
  const ctx = new RequestPickContext();
  ctx.reset(raw, options.url ?? '/', { remoteAddress: options.ip });
  return ctx;
}

export function counts<T>(items: Iterable<T>): Map<T, number> {
  const out = new Map<T, number>();
  for (const x of items) out.set(x, (out.get(x) ?? 0) + 1);
  return out;
}

export function pickIds(b: { pick(ctx: PickContext): TestHost | undefined }, n: number, ctx: PickContext): string[] {
  return Array.from({ length: n }, () => b.pick(ctx)?.id ?? '-');
}
