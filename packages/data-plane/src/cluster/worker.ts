/**
 * A worker process of a data plane started with --workers N: one client listener and one routing
 * table, fed by the primary over IPC (see protocol.ts). It never talks to the control plane or
 * touches the cache file. It listens only after the primary's `init` is applied, so a worker
 * restarted after a crash serves the current snapshot from its first request.
 */
import type { HostPort, Logger } from '@lb/shared';
import type { PushOutcome } from '../config/snapshot-applier.js';
import { DataPlaneMetrics } from '../metrics.js';
import type { ProxyServerOptions } from '../proxy/proxy-server.js';
import { TrafficRuntime } from '../traffic/traffic-runtime.js';
import { systemClock, systemRandom } from '../runtime/clock.js';
import type { UpstreamOptions } from '../upstream/upstream-pools.js';
import { isOurs, LB, type FromWorker, type ToWorker } from './protocol.js';

export interface WorkerOptions {
  listen: HostPort;
  /** Where configured listeners bind (--bind-address). */
  bindAddress: string;
  drainTimeoutMs: number;
  stickySecret?: string | undefined;
  upstream?: UpstreamOptions;
  proxy?: ProxyServerOptions;
  logger: Logger;
}

type Body<T> = T extends unknown ? Omit<T, 'lb'> : never;

function send(message: Body<FromWorker>): void {
  process.send?.({ lb: LB, ...message });
}

/** Runs until the primary says `drain` (or a signal arrives), then exits the process. */
export function runWorker(options: WorkerOptions): void {
  const { logger } = options;
  const metrics = new DataPlaneMetrics({ scope: 'worker', backendLimit: options.proxy?.metricsBackendLimit });
  const traffic = new TrafficRuntime({
    metrics,
    logger,
    random: systemRandom,
    clock: systemClock,
    stickySecret: options.stickySecret,
    upstream: options.upstream,
    proxy: options.proxy,
    bindAddress: options.bindAddress,
    drainTimeoutMs: options.drainTimeoutMs,
  });
  const { applier } = traffic;
  // Ejections are local to each worker's traffic; the primary reports them on the one stream.
  applier.onEjection((ejection) => send({ kind: 'ejection', ejection }));
  let stopping = false;

  const drain = (graceMs: number) => {
    if (stopping) return;
    stopping = true;
    traffic.drain(graceMs).then(
      (clean) => {
        if (!clean) logger.warn({ graceMs }, 'drain period over; closed the remaining client connections');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'worker drain failed');
        process.exit(1);
      },
    );
  };

  // A push that opens a port answers once it is bound; the primary sends the next only after every answer.
  const apply = async (seq: number, run: () => PushOutcome | Promise<PushOutcome>): Promise<boolean> => {
    let outcome: PushOutcome;
    try {
      outcome = await run();
    } catch (err) {
      logger.error({ err }, 'applying a snapshot in a worker failed unexpectedly');
      outcome = { ok: false, error: `internal error: ${(err as Error).message}` };
    }
    send(outcome.ok ? { kind: 'applied', seq, ok: true } : { kind: 'applied', seq, ok: false, error: outcome.error });
    return outcome.ok;
  };

  process.on('message', (message: unknown) => {
    if (!isOurs(message)) return;
    const m = message as ToWorker;
    switch (m.kind) {
      case 'init': {
        void apply(m.seq, () => {
          applier.onHealth(m.health);
          if (m.snapshot !== null) return applier.onConfig(m.snapshot, { replace: true });
          return { ok: true };
        }).then((ok) => {
          // Not with a config the other workers do not run: the primary kills and replaces this one.
          if (!ok) return;
          return traffic.listen(options.listen.host, options.listen.port).then(
            (address) => send({ kind: 'listening', address: address.address, port: address.port }),
            (err: unknown) => {
              send({ kind: 'listenError', error: (err as Error).message });
              process.exitCode = 1;
              process.disconnect();
            },
          );
        });
        return;
      }
      case 'config':
        return void apply(m.seq, () => applier.onConfig(m.snapshot, { replace: m.replace === true }));
      case 'health':
        return void apply(m.seq, () => applier.onHealth(m.update));
      case 'ejection':
        return applier.outliers.adopt(m.ejection);
      case 'metrics':
        metrics.registry.getMetricsAsJSON().then(
          (json) => send({ kind: 'metrics', seq: m.seq, metrics: json }),
          () => send({ kind: 'metrics', seq: m.seq, metrics: [] }),
        );
        return;
      case 'describe':
        return send({ kind: 'describe', seq: m.seq, view: applier.describe() });
      case 'drain':
        return drain(m.graceMs);
      case 'reopen':
        return traffic.reopenLogs();
    }
  });
  process.on('SIGHUP', () => traffic.reopenLogs());
  // A signal sent to the whole process group (Ctrl-C, systemd's control-group kill) reaches the
  // workers too: drain like the primary would ask.
  process.on('SIGTERM', () => drain(options.drainTimeoutMs));
  process.on('SIGINT', () => drain(options.drainTimeoutMs));
  send({ kind: 'hello' });
}
