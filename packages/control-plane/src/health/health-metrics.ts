/** Health-check metrics, registered on the control plane's registry (one per process). */
import { Counter, Gauge, type Registry } from 'prom-client';

export class HealthMetrics {
  /** Probes this replica sent, by result (ok|fail); only the leader's grows. */
  readonly probes: Counter<'result'>;
  /** 1 while this replica is the health-check leader. */
  readonly leader: Gauge;

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
  }
}
