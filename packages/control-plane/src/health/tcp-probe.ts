/** TCP health probe: success is an accepted connection, closed at once. */
import { connect } from 'node:net';
import { errorDetail, probeEndpoint, type Probe } from './probe.js';

export const tcpProbe: Probe = (target, options) => {
  const { host, port } = probeEndpoint(target);
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const socket = connect({ host, port });
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, latencyMs: Math.round(performance.now() - started), detail });
    };
    const timer = setTimeout(() => finish(false, `timed out after ${options.timeoutMs} ms`), options.timeoutMs);
    socket.once('connect', () => finish(true, 'connected'));
    socket.once('error', (err) => finish(false, errorDetail(err)));
  });
};
