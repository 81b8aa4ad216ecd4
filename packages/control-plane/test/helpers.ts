/** Test helpers: the app over in-memory stores, and polling with a deadline instead of sleeps. */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../src/app.js';
import { MemoryConfigStore, MemoryNodeStore } from '../src/store/memory-config-store.js';
import { CpMetrics } from '../src/metrics.js';

export interface TestApp {
  app: FastifyInstance;
  store: MemoryConfigStore;
  nodes: MemoryNodeStore;
  metrics: CpMetrics;
}

export async function testApp(): Promise<TestApp> {
  const store = new MemoryConfigStore();
  const nodes = new MemoryNodeStore();
  const metrics = new CpMetrics();
  const app = await buildApp({ store, nodes, metrics });
  return { app, store, nodes, metrics };
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function json<T = Record<string, unknown>>(response: LightMyRequestResponse): T {
  return response.json() as T;
}

export const pool = (backends: Array<Record<string, unknown>> = [{ id: 'b1', address: '10.0.0.1:80' }]) => ({ algorithm: 'round_robin', backends });
