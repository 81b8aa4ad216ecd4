/**
 * Who is calling: turns an `Authorization: Bearer <secret>` header into a Principal, or throws a
 * 401 ApiError. Two kinds of secret are accepted:
 * - API tokens (`lb_<name>_<hex>`, token-store.ts), checked against their scrypt hash once and then
 *   remembered by a fast digest for as long as the stored record stays the same, so a revoked or
 *   replaced token stops working at the next request;
 * - the bootstrap admin secret of --admin-token-file (any text), held only in this process.
 */
import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, StoreUnavailableError } from '../errors.js';
import type { FailureThrottle } from './failure-throttle.js';
import type { Principal } from './roles.js';
import { nameInSecret, secretDigest, verifySecret } from './token-secret.js';
import type { TokenStore } from './token-store.js';

/** The actor name of the --admin-token-file secret; no API token may take it. */
export const BOOTSTRAP_ACTOR = 'bootstrap-admin';

export interface AuthenticatorOptions {
  tokens: TokenStore;
  /** The secret read from --admin-token-file; absent: no bootstrap secret. */
  bootstrapSecret?: string;
  throttle: FailureThrottle;
  now?: () => Date;
  /** How long a request waits for the first load of the tokens (etcd down at start) before 503. */
  readyTimeoutMs?: number;
  /** Verified secrets remembered at most (the memory is dropped whole when full). */
  maxRemembered?: number;
}

interface Remembered {
  name: string;
  /** The stored hash the secret was verified against: a replaced record invalidates it. */
  hash: string;
}

const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export function unauthenticated(detail: string): ApiError {
  return new ApiError('LB_CP_UNAUTHENTICATED', detail);
}

export class Authenticator {
  private readonly bootstrapDigest: Buffer | undefined;
  private readonly remembered = new Map<string, Remembered>();
  private readonly now: () => Date;
  private readonly readyTimeoutMs: number;
  private readonly maxRemembered: number;

  constructor(private readonly options: AuthenticatorOptions) {
    this.bootstrapDigest = options.bootstrapSecret === undefined ? undefined : secretDigest(options.bootstrapSecret);
    this.now = options.now ?? (() => new Date());
    this.readyTimeoutMs = options.readyTimeoutMs ?? 4_000;
    this.maxRemembered = options.maxRemembered ?? 10_000;
  }

  /** `source` is the caller's address: repeated wrong tokens from it are slowed down. */
  async authenticate(authorization: string | undefined, source: string): Promise<Principal> {
    if (authorization === undefined || authorization === '') throw unauthenticated('this endpoint needs a token: send Authorization: Bearer <token>');
    const secret = BEARER_RE.exec(authorization)?.[1];
    if (secret !== undefined) {
      const known = this.knownPrincipal(secret);
      if (known !== undefined) return known;
    }
    // Everything below costs a slow hash or is a wrong guess: an address that keeps guessing waits.
    const delay = this.options.throttle.delayFor(source);
    if (delay > 0) await sleep(delay);
    if (secret === undefined) throw this.failed(source, 'the Authorization header must read "Bearer <token>"');
    await this.tokensLoaded();
    const name = nameInSecret(secret);
    const record = name === undefined ? undefined : this.options.tokens.get(name);
    if (record === undefined || !(await verifySecret(secret, record.hash))) throw this.failed(source, 'the token is not valid: unknown, revoked or mistyped');
    if (this.remembered.size >= this.maxRemembered) this.remembered.clear();
    this.remembered.set(secretDigest(secret).toString('hex'), { name: record.name, hash: record.hash });
    return this.unexpired({ name: record.name, role: record.role }, record.expiresAt);
  }

  /** The bootstrap secret, or an API token verified before whose record has not changed since. */
  private knownPrincipal(secret: string): Principal | undefined {
    const digest = secretDigest(secret);
    if (this.bootstrapDigest !== undefined && timingSafeEqual(digest, this.bootstrapDigest)) return { name: BOOTSTRAP_ACTOR, role: 'admin' };
    const key = digest.toString('hex');
    const known = this.remembered.get(key);
    if (known === undefined) return undefined;
    const record = this.options.tokens.get(known.name);
    if (record !== undefined && record.hash === known.hash) return this.unexpired({ name: record.name, role: record.role }, record.expiresAt);
    this.remembered.delete(key);
    return undefined;
  }

  private unexpired(principal: Principal, expiresAt: string | undefined): Principal {
    if (expiresAt !== undefined && Date.parse(expiresAt) <= this.now().getTime()) throw unauthenticated(`token "${principal.name}" expired at ${expiresAt}`);
    return principal;
  }

  private failed(source: string, detail: string): ApiError {
    this.options.throttle.recordFailure(source);
    return unauthenticated(detail);
  }

  private async tokensLoaded(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailableError(`the API tokens could not be loaded from etcd within ${this.readyTimeoutMs} ms`)),
        this.readyTimeoutMs,
      );
    });
    try {
      await Promise.race([this.options.tokens.ready(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
