/**
 * One etcd3 client with deadlines everywhere, so an unreachable etcd turns into a quick
 * StoreUnavailableError (REST 503) instead of a request that hangs.
 */
import { Etcd3, type IOptions } from 'etcd3';

type Policy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;
import { StoreTooLargeError, StoreUnavailableError } from '../errors.js';

export interface EtcdClientOptions {
  /** `http://host:port` URLs (a bare `host:port` gets `http://`). */
  hosts: string[];
  /** Deadline of each unary etcd call (one attempt), in ms. */
  callTimeoutMs?: number;
  /** TLS to etcd (https:// hosts): the CA to trust (default: the system's) and a client certificate. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

export const DEFAULT_CALL_TIMEOUT_MS = 2_000;

/**
 * A per-host policy that lets every call through. etcd3's default opens a circuit breaker for 5 s
 * after 3 failed calls in a row; with one etcd that refuses every call — config reads, watches,
 * node records, the health election — for 5 s after a blip (or a burst of deadlines under load).
 * With one host there is nowhere else to go, and the channel's own reconnect backoff paces calls.
 * (Async like cockatiel's policies: etcd3 reports failures through it and catches the rejection.)
 */
const LET_EVERY_CALL_THROUGH = { execute: async <T>(fn: () => T | Promise<T>): Promise<T> => fn() };

export function createEtcdClient(options: EtcdClientOptions): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  return new Etcd3({
    // Several hosts keep etcd3's breaker: it is what moves calls off a dead member.
    ...(options.hosts.length === 1 ? { faultHandling: { host: () => LET_EVERY_CALL_THROUGH as unknown as Policy } } : {}),
    hosts: options.hosts.map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`)),
    dialTimeout: callTimeoutMs,
    ...(options.tls !== undefined
      ? {
          credentials: {
            // etcd3 hands these to grpc's createSsl, where a null root means the system's CAs; its types do not say so.
            rootCertificate: (options.tls.ca ?? null) as Buffer,
            ...(options.tls.cert !== undefined ? { certChain: options.tls.cert, privateKey: options.tls.key! } : {}),
          },
        }
      : {}),
    // Streams (watch, lease keepalive) live for the whole process, so only unary calls get one.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    grpcOptions: {
      // grpc-js backs off up to 120 s between reconnects by default; etcd coming back after a
      // restart must be noticed in seconds.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
      // Detect a dead etcd under a long-lived watch. etcd's default --grpc-keepalive-min-time is
      // 5 s; pinging more often than that gets the connection closed.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // Nothing reads channelz; it would count and timestamp every call.
      'grpc.enable_channelz': 0,
    },
  });
}

/** etcd operations that failed in this process, by kind (lb_cp_etcd_errors_total). */
export const etcdErrors = { timeout: 0, unavailable: 0, too_large: 0 };

/**
 * Runs one store operation under an overall deadline and maps every failure to the store error
 * types. The etcd3 client retries a failed call on its own (up to 3 times), each attempt with its
 * own deadline; this caps the total.
 */
export async function guarded<T>(what: string, deadlineMs: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      etcdErrors.timeout++;
      reject(new StoreUnavailableError(`etcd did not answer ${what} within ${deadlineMs} ms`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([work(), timeout]);
  } catch (err) {
    if (err instanceof StoreUnavailableError || err instanceof StoreTooLargeError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    if (/request is too large/i.test(message)) {
      etcdErrors.too_large++;
      throw new StoreTooLargeError(`etcd refused ${what}: ${message}`);
    }
    etcdErrors.unavailable++;
    throw new StoreUnavailableError(`etcd ${what} failed: ${message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
