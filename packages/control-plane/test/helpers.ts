/** Test helpers: the app over in-memory stores, and polling with a deadline instead of sleeps. */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp, type AppOptions } from '../src/app.js';
import { MemoryAuditLog } from '../src/audit/audit-log.js';
import { Authenticator } from '../src/auth/authenticator.js';
import { FailureThrottle } from '../src/auth/failure-throttle.js';
import { MemoryTokenStore } from '../src/auth/token-store.js';
import { CpMetrics } from '../src/metrics.js';
import { MemoryConfigStore } from '../src/store/memory-config-store.js';
import { MemoryNodeStore } from '../src/store/memory-node-store.js';

/** The bootstrap admin secret of every test app; requests carry it unless they set Authorization. */
export const ADMIN_SECRET = 'unit-test-admin-secret';

export interface TestAuth {
  tokens: MemoryTokenStore;
  authenticator: Authenticator;
  throttle: FailureThrottle;
}

export function testAuth(): TestAuth {
  const tokens = new MemoryTokenStore();
  const throttle = new FailureThrottle();
  return { tokens, throttle, authenticator: new Authenticator({ tokens, throttle, bootstrapSecret: ADMIN_SECRET }) };
}

/**
 * `app.inject` sends the bootstrap admin token by default, so tests of what the API does need not
 * repeat it; tests of access control pass their own `authorization` (or `''` for none).
 */
export function injectAsAdmin(app: FastifyInstance): void {
  const inject = app.inject.bind(app) as (options: InjectOptions) => Promise<LightMyRequestResponse>;
  (app as unknown as { inject: (options: InjectOptions) => Promise<LightMyRequestResponse> }).inject = (options: InjectOptions) => {
    const headers = { ...(options.headers ?? {}) } as Record<string, string>;
    if (!('authorization' in headers)) headers.authorization = `Bearer ${ADMIN_SECRET}`;
    if (headers.authorization === '') delete headers.authorization;
    return inject({ ...options, headers });
  };
}

export interface TestApp {
  app: FastifyInstance;
  store: MemoryConfigStore;
  nodes: MemoryNodeStore;
  metrics: CpMetrics;
  auth: TestAuth;
  audit: MemoryAuditLog;
}

export async function testApp(options: Partial<AppOptions> = {}): Promise<TestApp> {
  const store = new MemoryConfigStore();
  const nodes = new MemoryNodeStore();
  const metrics = new CpMetrics();
  const auth = testAuth();
  const audit = new MemoryAuditLog();
  const app = await buildApp({ store, nodes, metrics, audit, auth: { authenticator: auth.authenticator, tokens: auth.tokens }, ...options });
  injectAsAdmin(app);
  return { app, store, nodes, metrics, auth, audit };
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
