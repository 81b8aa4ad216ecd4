/**
 * gRPC health probe: grpc.health.v1.Health/Check for the whole server (service ""), over TLS when
 * the pool says so. Success is SERVING. The two tiny messages are encoded by hand so no .proto file has to ship.
 */
import * as grpc from '@grpc/grpc-js';
import { errorDetail, probeEndpoint, type Probe } from './probe.js';

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** HealthCheckRequest{service: ""}: an empty message. */
const serialize = (): Buffer => Buffer.alloc(0);

/** HealthCheckResponse{status = 1 (enum)}: field 1, varint. Absent means 0 (UNKNOWN). */
export function decodeServingStatus(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++]!;
    if (tag === 0x08) {
      let value = 0;
      let shift = 0;
      for (;;) {
        const byte = buf[i++] ?? 0;
        value |= (byte & 0x7f) << shift;
        if ((byte & 0x80) === 0 || i >= buf.length) break;
        shift += 7;
      }
      return value;
    }
    return 0;
  }
  return 0;
}

export const grpcProbe: Probe = (target, options) => {
  const { host, port } = probeEndpoint(target);
  const started = performance.now();
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const tls = target.tls;
  const credentials =
    tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(
          tls.ca === undefined ? null : Buffer.from(tls.ca),
          tls.key === undefined ? null : Buffer.from(tls.key),
          tls.cert === undefined ? null : Buffer.from(tls.cert),
          { rejectUnauthorized: tls.verify },
        );
  const client = new grpc.Client(authority, credentials, {
    ...(target.check.host !== undefined ? { 'grpc.default_authority': target.check.host } : {}),
    ...(tls?.servername !== undefined ? { 'grpc.ssl_target_name_override': tls.servername } : {}),
  });
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      serialize,
      (buf: Buffer) => decodeServingStatus(buf),
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + options.timeoutMs },
      (err, status) => {
        client.close();
        const latencyMs = Math.round(performance.now() - started);
        if (err) return resolve({ ok: false, latencyMs, detail: errorDetail(err) });
        const name = SERVING_STATUS[status ?? 0] ?? String(status);
        resolve({ ok: status === 1, latencyMs, detail: name });
      },
    );
  });
};
