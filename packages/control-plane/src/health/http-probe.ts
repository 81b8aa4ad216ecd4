/** HTTP health probe: GET `path` on a fresh connection (TLS when the pool says so); success is a status in expectedStatuses. */
import { request } from 'node:http';
import { request as secureRequest } from 'node:https';
import { statusExpected } from '@lb/shared';
import { errorDetail, probeEndpoint, probeTlsOptions, type Probe } from './probe.js';

export const PROBE_REPLICA_HEADER = 'x-lb-probe-replica';

export const httpProbe: Probe = (target, options) => {
  const { host, port } = probeEndpoint(target);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok, latencyMs: elapsed(), detail });
    };
    const send = target.tls === undefined ? request : secureRequest;
    const req = send({
      ...(target.tls !== undefined ? probeTlsOptions(target.tls, host) : {}),
      host,
      port,
      method: 'GET',
      path: target.check.path,
      // A fresh connection per probe: a pooled one could hide a backend that stopped accepting.
      agent: false,
      headers: {
        host: target.check.host ?? target.address,
        'user-agent': 'lb-health-check',
        connection: 'close',
        [PROBE_REPLICA_HEADER]: options.replica,
      },
    });
    const timer = setTimeout(() => {
      finish(false, `timed out after ${options.timeoutMs} ms`);
      req.destroy();
    }, options.timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      finish(statusExpected(target.check.expectedStatuses, status), `HTTP ${status}`);
      res.on('error', () => undefined);
    });
    req.on('error', (err) => finish(false, errorDetail(err)));
    req.end();
  });
};
