import { describe, expect, it } from 'vitest';
import type { HealthCheck } from '@lb/shared';
import type { Probe, ProbeResult, ProbeTarget } from '../src/health/probe.js';
import { ProbeScheduler } from '../src/health/scheduler.js';
import { waitFor } from './helpers.js';

const CHECK: HealthCheck = {
  type: 'http',
  path: '/health',
  intervalMs: 1_000,
  timeoutMs: 500,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  expectedStatuses: [200],
};
const TARGET: ProbeTarget = { pool: 'web', backendId: 'a', address: '10.0.0.1:80', check: CHECK };

describe('ProbeScheduler', () => {
  it('drops the result of a probe from a term that was stopped, even after a quick restart', async () => {
    const pending: Array<(r: ProbeResult) => void> = [];
    const probe: Probe = () => new Promise((resolve) => pending.push(resolve));
    const results: string[] = [];
    const scheduler = new ProbeScheduler({
      probes: { http: probe, tcp: probe, grpc: probe },
      replica: 'r',
      random: () => 0, // first probe at once, later ones after 90% of the interval
      onResult: (_t, r) => results.push(r.detail),
    });
    scheduler.setTargets([TARGET]);
    scheduler.start();
    await waitFor('the first term probe', () => pending.length === 1);
    // Leadership flips away and back while that probe is in flight.
    scheduler.stop();
    scheduler.start();
    // The new term probes at once rather than waiting for the old term's probe.
    await waitFor('the second term probe', () => pending.length === 2);
    pending[0]!({ ok: false, latencyMs: 1, detail: 'old term' });
    pending[1]!({ ok: true, latencyMs: 1, detail: 'new term' });
    await new Promise((r) => setTimeout(r, 20));
    expect(results).toEqual(['new term']);
    scheduler.stop();
  });
});
