/**
 * Whether a failed attempt is tried again, and where — Envoy's RetryState. Created on a request's
 * first failure (a request that succeeds never builds one), it keeps the attempts made, the
 * backends already tried (a retry avoids them while another is available), and the retry
 * budget's withdrawal, given back if the retry is never sent.
 *
 * The budget (resilience/retry-budget.ts) caps retries that add load to a pool's backends. A
 * retry after a failed connect does not draw on it: the request never reached a backend, so
 * sending it elsewhere costs the pool nothing — and a dead backend, which fails a share of every
 * first attempt, must not exhaust the budget and turn its share of requests into 502s. The
 * policy's `attempts` still bounds every retry. (NGINX retries a failed connect on the next
 * server by default for the same reason.)
 */
import { EMPTY_PICK_CONTEXT } from '../balancer/balancer.js';
import type { BackendRuntime } from '../balancer/host.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import { backoffDelay, FailureKind, requestRetryable, type CompiledRetry } from '../resilience/retry-policy.js';
import type { Random } from '../runtime/clock.js';
import { pickBackend, type CompiledBackend, type CompiledRoute, type RouteTarget } from '../routing/routing-table.js';
import { wouldAdmit } from './admission.js';
import type { ProxyRequest } from './exchange.js';

// Scratch space for retry picks; never held across an await.
const picked: { target: RouteTarget | undefined } = { target: undefined };

/** A retry's backend: not one already tried when another is available, within limits, breaker closed. */
function chooseRetryBackend(route: CompiledRoute, out: { target: RouteTarget | undefined }, tried: readonly BackendRuntime[]): CompiledBackend | undefined {
  let fallback: CompiledBackend | undefined;
  let fallbackTarget: RouteTarget | undefined;
  let tries = 2;
  for (const t of route.targets) tries += t.pool.balancer.size;
  if (tries > 32) tries = 32;
  for (let i = 0; i < tries; i++) {
    const b = pickBackend(route, out, EMPTY_PICK_CONTEXT, true);
    const target = out.target;
    if (b === undefined || target === undefined || b.upstream === undefined) return undefined;
    if (!wouldAdmit(target, b.runtime)) continue;
    if (!tried.includes(b.runtime)) return b;
    if (fallback === undefined) {
      fallback = b;
      fallbackTarget = target;
    }
  }
  out.target = fallbackTarget;
  return fallback;
}

export class RetryState {
  /** The attempt being made, 1 for the first. */
  attempt = 1;
  /** Where the retry goes, chosen when it was decided. */
  nextBackend: CompiledBackend | undefined = undefined;
  nextTarget: RouteTarget | undefined = undefined;
  /** Index of the X-Retry-Count value in the request headers (0: not added yet). */
  retryHeaderAt = 0;
  private readonly tried: BackendRuntime[] = [];
  /** The budget the pending retry was withdrawn from, to give back if it is never sent. */
  private withdrawn: RetryBudget | undefined = undefined;

  /**
   * Whether the failure `kind` of the attempt to `failed` (of `target`) is retried: the policy
   * covers it, tries are left, the request may be sent again (method or idempotency key, body
   * not streamed yet), another backend takes it, and the budget allows. On true the next backend
   * is chosen already.
   */
  decide(route: CompiledRoute, target: RouteTarget, failed: BackendRuntime, kind: number, req: ProxyRequest, hasBody: boolean): boolean {
    const policy = target.policy.retry;
    if ((policy.on & kind) === 0 || this.attempt >= policy.attempts) return false;
    // A body that started streaming to a backend cannot be sent again.
    if (hasBody && (req.readableDidRead || req.destroyed)) return false;
    // A gRPC call is a POST, but one that never reached a backend (the only kind the call retries) is safe to send again.
    if (!(req.grpc === true && kind === FailureKind.ConnectFailure) && !requestRetryable(policy, req.method, req.rawHeaders)) return false;
    if (!this.tried.includes(failed)) this.tried.push(failed);
    const next = chooseRetryBackend(route, picked, this.tried);
    const nextTarget = picked.target;
    if (next === undefined || nextTarget === undefined) return false;
    if (kind !== FailureKind.ConnectFailure) {
      const pool = target.pool.resilience;
      if (!pool.budget.tryWithdraw()) {
        pool.stats.budgetExhausted++;
        return false;
      }
      this.withdrawn = pool.budget;
    }
    this.nextBackend = next;
    this.nextTarget = nextTarget;
    failed.retried++;
    return true;
  }

  /** The wait before the decided retry (full-jitter exponential backoff); counts the attempt. */
  backoff(policy: CompiledRetry, random: Random): number {
    const delay = backoffDelay(policy, this.attempt, random);
    this.attempt++;
    return delay;
  }

  /** The decided retry is being sent: its withdrawal stays spent. */
  sent(): void {
    this.withdrawn = undefined;
  }

  /** The decided retry will not be sent (the client left, or its backend is over a limit now): the withdrawal goes back. */
  cancel(): void {
    this.withdrawn?.refund();
    this.withdrawn = undefined;
  }
}
