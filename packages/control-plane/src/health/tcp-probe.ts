/** TCP health probe: success is an accepted connection (and a TLS handshake, for pools with tls), closed at once. */
import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { errorDetail, probeEndpoint, probeTlsOptions, type Probe } from './probe.js';

export const tcpProbe: Probe = (target, options) => {
  const { host, port } = probeEndpoint(target);
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const socket = target.tls === undefined ? connect({ host, port }) : connectTls({ ...probeTlsOptions(target.tls, host), host, port });
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, latencyMs: Math.round(performance.now() - started), detail });
    };
    const timer = setTimeout(() => finish(false, `timed out after ${options.timeoutMs} ms`), options.timeoutMs);
    if (target.tls === undefined) socket.once('connect', () => finish(true, 'connected'));
    else socket.once('secureConnect', () => finish(true, 'TLS handshake done'));
    socket.once('error', (err) => finish(false, errorDetail(err)));
  });
};
