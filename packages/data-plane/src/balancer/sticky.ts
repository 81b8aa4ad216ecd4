/**
 * Sticky sessions on top of any algorithm. The cookie value names the backend and is signed:
 * `<backend id>.<HMAC-SHA256(secret, pool, id), 128 bits, base64url>`. Every data plane started
 * with the same secret (--sticky-secret / LB_STICKY_SECRET) computes the same value, so any node
 * honours a cookie set by any other without shared state.
 *
 * Signatures are computed when the balancer is built (and cached on the backend's runtime), never
 * per request: a pick is one Map lookup of the cookie value among the valid values of the hosts
 * that may take traffic now. A cookie naming a backend that is gone, unhealthy or draining — or a
 * forged one — is not in the map, so the request falls back to the algorithm and is re-pinned.
 */
import { createHmac } from 'node:crypto';
import type { StickyOptions } from '@lb/shared';
import type { Balancer, PickContext } from './balancer.js';
import type { Host } from './host.js';

/** Used when no secret is configured: cookies then only resist accidents, not forgery. Set a secret in production. */
export const DEFAULT_STICKY_SECRET = 'lb-sticky-default-secret';

/** The signed cookie value that pins `backendId` of `pool`. */
export function signStickyValue(secret: string, pool: string, backendId: string): string {
  const mac = createHmac('sha256', secret).update(`lb-sticky\u0000${pool}\u0000${backendId}`).digest();
  return `${backendId}.${mac.subarray(0, 16).toString('base64url')}`;
}

/** The Set-Cookie header value for a cookie value. */
export function stickySetCookie(options: StickyOptions, value: string): string {
  let s = `${options.cookie}=${value}; Path=/`;
  if (options.ttlSeconds > 0) s += `; Max-Age=${options.ttlSeconds}`;
  if (options.httpOnly) s += '; HttpOnly';
  if (options.secure) s += '; Secure';
  return `${s}; SameSite=${options.sameSite}`;
}

export class StickyBalancer<H extends Host> implements Balancer<H> {
  private readonly byValue = new Map<string, H>();
  private readonly setCookieOf = new Map<H, string>();
  private readonly cookie: string;

  constructor(
    private readonly inner: Balancer<H>,
    hosts: readonly H[],
    options: StickyOptions,
    pool: string,
    secret: string,
  ) {
    this.cookie = options.cookie;
    for (const h of hosts) {
      const rt = h.runtime;
      // The runtime belongs to this pool and backend id, so only the secret can invalidate the cache.
      if (rt.stickyValue === undefined || rt.stickySecret !== secret) {
        rt.stickyValue = signStickyValue(secret, pool, h.id);
        rt.stickySecret = secret;
      }
      this.byValue.set(rt.stickyValue, h);
      this.setCookieOf.set(h, stickySetCookie(options, rt.stickyValue));
    }
  }

  get size(): number {
    return this.inner.size;
  }

  pick(ctx: PickContext): H | undefined {
    const value = ctx.cookie(this.cookie);
    if (value !== undefined) {
      const pinned = this.byValue.get(value);
      if (pinned !== undefined) return pinned;
    }
    const h = this.inner.pick(ctx);
    if (h !== undefined) ctx.pin(this.setCookieOf.get(h)!);
    return h;
  }

  /** A retry leaves the failed pin behind and pins nothing (the forwarder drops the cookie). */
  pickForRetry(ctx: PickContext): H | undefined {
    const inner = this.inner;
    return inner.pickForRetry !== undefined ? inner.pickForRetry(ctx) : inner.pick(ctx);
  }
}
