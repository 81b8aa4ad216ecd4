/**
 * Health-check metrics, registered on the control plane's registry (one per process): probes by
 * result, per backend for pools up to PER_BACKEND_LIMIT backends (a bigger pool counts per pool
 * only, so 100,000 backends cannot swamp /metrics), and probe latency per pool.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Pools probed with more backends than this are counted per pool only. */
export const PER_BACKEND_LIMIT = 100;

interface BackendProbes {
  ok: number;
  fail: number;
}

export class HealthMetrics {
  /** Probes this replica sent, by result (ok|fail); only the leader's grows. */
  readonly probes: Counter<'result'>;
  /** 1 while this replica is the health-check leader. */
  readonly leader: Gauge;
  private readonly latency: Histogram<'pool'>;
  /** Per pool, per backend: probe results of this replica. */
  private readonly perBackend = new Map<string, Map<string, BackendProbes>>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.probes = new Counter({
      name: 'lb_cp_health_probes_total',
      help: 'Active health probes sent by this replica, by result (ok|fail)',
      labelNames: ['result'],
      registers,
    });
    this.leader = new Gauge({ name: 'lb_cp_health_leader', help: '1 while this replica is the health-check leader', registers });
    this.leader.set(0);
    this.latency = new Histogram({
      name: 'lb_cp_health_probe_seconds',
      help: 'Time a probe took (to its answer, its failure or its timeout), by pool',
      labelNames: ['pool'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const perBackend = this.perBackend;
    new Counter({
      name: 'lb_cp_health_backend_probes_total',
      help: `Probes of one backend by result (ok|fail); pools with more than ${PER_BACKEND_LIMIT} backends are counted per pool only (lb_cp_health_pool_probes_total)`,
      labelNames: ['pool', 'backend', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [pool, backends] of perBackend) {
          if (backends.size > PER_BACKEND_LIMIT) continue;
          for (const [backend, n] of backends) {
            if (n.ok > 0) this.inc({ pool, backend, result: 'ok' }, n.ok);
            if (n.fail > 0) this.inc({ pool, backend, result: 'fail' }, n.fail);
          }
        }
      },
    });
    new Counter({
      name: 'lb_cp_health_pool_probes_total',
      help: "Probes of a pool's backends by result (ok|fail)",
      labelNames: ['pool', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [pool, backends] of perBackend) {
          let ok = 0;
          let fail = 0;
          for (const n of backends.values()) {
            ok += n.ok;
            fail += n.fail;
          }
          if (ok > 0) this.inc({ pool, result: 'ok' }, ok);
          if (fail > 0) this.inc({ pool, result: 'fail' }, fail);
        }
      },
    });
  }

  /** One probe's outcome. */
  probed(pool: string, backend: string, ok: boolean, latencyMs: number): void {
    this.probes.inc({ result: ok ? 'ok' : 'fail' });
    this.latency.observe({ pool }, latencyMs / 1000);
    let backends = this.perBackend.get(pool);
    if (backends === undefined) {
      backends = new Map();
      this.perBackend.set(pool, backends);
    }
    let n = backends.get(backend);
    if (n === undefined) {
      n = { ok: 0, fail: 0 };
      backends.set(backend, n);
    }
    if (ok) n.ok++;
    else n.fail++;
  }

  /** A backend is no longer probed (it left the config). */
  forget(pool: string, backend: string): void {
    const backends = this.perBackend.get(pool);
    backends?.delete(backend);
    if (backends?.size === 0) this.perBackend.delete(pool);
  }
}
