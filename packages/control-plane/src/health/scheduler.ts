/**
 * Runs one probe per target on its own jittered schedule: the first probe of each target fires at
 * a random point within its first interval and every later one after `intervalMs` ± 10%, so a pool
 * of many backends (or many pools with one interval) never probes in bursts. A probe never outlives
 * 90% of its interval, so at most one probe per target is in flight (per term: see stop).
 *
 * The scheduler knows nothing of thresholds or storage: each result goes to `onResult`.
 */
import type { HealthCheckType } from '@lb/shared';
import type { Probe, ProbeResult, ProbeTarget } from './probe.js';

export interface SchedulerOptions {
  probes: Record<HealthCheckType, Probe>;
  replica: string;
  random: () => number;
  onResult(target: ProbeTarget, result: ProbeResult): void;
}

interface Slot {
  target: ProbeTarget;
  signature: string;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
}

/** What makes a target's probing restart when it changes. */
function signatureOf(target: ProbeTarget): string {
  return JSON.stringify([target.address, target.check, target.tls?.id]);
}

export function targetKey(pool: string, backendId: string): string {
  return `${pool}/${backendId}`;
}

export class ProbeScheduler {
  private readonly slots = new Map<string, Slot>();
  private running = false;
  /** Bumped by stop(): a probe started in an earlier term reports nothing and frees no slot. */
  private term = 0;

  constructor(private readonly options: SchedulerOptions) {}

  get size(): number {
    return this.slots.size;
  }

  /** Replaces the target set: new targets start, removed ones stop, changed ones restart. */
  setTargets(targets: readonly ProbeTarget[]): void {
    const next = new Map(targets.map((t) => [targetKey(t.pool, t.backendId), t]));
    for (const [key, slot] of this.slots) {
      const t = next.get(key);
      if (t === undefined || signatureOf(t) !== slot.signature) {
        clearTimeout(slot.timer);
        this.slots.delete(key);
      }
    }
    for (const [key, target] of next) {
      if (this.slots.has(key)) continue;
      const slot: Slot = { target, signature: signatureOf(target), timer: undefined, running: false };
      this.slots.set(key, slot);
      if (this.running) this.schedule(slot, this.options.random() * target.check.intervalMs);
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const slot of this.slots.values()) this.schedule(slot, this.options.random() * slot.target.check.intervalMs);
  }

  /**
   * Stops every timer; results of probes still in flight are dropped, also when start() is called
   * again before they end (a quick leadership flip), and they do not hold back the next term's probes.
   */
  stop(): void {
    this.running = false;
    this.term++;
    for (const slot of this.slots.values()) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.running = false;
    }
  }

  private schedule(slot: Slot, delayMs: number): void {
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.fire(slot), Math.max(0, Math.round(delayMs)));
  }

  private fire(slot: Slot): void {
    if (!this.running || this.slots.get(targetKey(slot.target.pool, slot.target.backendId)) !== slot) return;
    const { check } = slot.target;
    this.schedule(slot, check.intervalMs * (0.9 + 0.2 * this.options.random()));
    if (slot.running) return;
    slot.running = true;
    const term = this.term;
    const timeoutMs = Math.max(1, Math.min(check.timeoutMs, Math.floor(check.intervalMs * 0.9)));
    const probe = this.options.probes[check.type];
    probe(slot.target, { timeoutMs, replica: this.options.replica })
      .catch((err: unknown): ProbeResult => ({ ok: false, latencyMs: 0, detail: `probe failed: ${(err as Error).message}` }))
      .then((result) => {
        if (term !== this.term) return;
        slot.running = false;
        if (!this.running || this.slots.get(targetKey(slot.target.pool, slot.target.backendId)) !== slot) return;
        this.options.onResult(slot.target, result);
      });
  }
}
