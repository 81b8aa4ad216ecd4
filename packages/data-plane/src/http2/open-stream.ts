/**
 * ClientHttp2Session.request() without the price node adds to every call (Node 20 to 24 alike).
 *
 * request() wraps its own continuation in `new AsyncResource('PendingRequest').bind(fn)`, and
 * AsyncResource.prototype.bind defines an `asyncResource` accessor on every function it binds, made
 * of two fresh deprecate() wrappers (DEP0172), each a new function whose prototype is then set: a
 * map transition V8 takes the slow way. Per gRPC call through the proxy that was about 4 % of the
 * data plane's CPU samples, plus the garbage and the megamorphic property loads it caused
 * elsewhere (a perf profile under `h2load` gRPC load, 2026-12-03). Without it: a quarter less CPU
 * per gRPC call, a third more calls/s (bench/README.md).
 *
 * For the length of the synchronous request() call only, AsyncResource.prototype.bind is one that
 * returns the same bound function — it runs `fn` in the resource's async scope, as node's does —
 * without the deprecated accessor, which node's http2 never reads (it only calls the function).
 * request() runs no code of ours or of a user's before it returns (its events come on later
 * ticks), so nothing else can see the swap; the original is back before request() returns or
 * throws.
 *
 * The options carry the stream priority's defaults (no parent, not exclusive, not silent) already:
 * request() copies its options and adds each one missing, and those three additions to a fresh
 * object were another 2 % of the samples. `weight` is left out: Node 22 and 24 warn when it is
 * given (priority signalling is deprecated, RFC 9113 §5.3.2), and Node 20 adds its default.
 */
import { AsyncResource } from 'node:async_hooks';
import type { ClientHttp2Session, ClientHttp2Stream, ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';

type Bind = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => unknown;

const prototype = AsyncResource.prototype as unknown as { bind: Bind };
const nodeBind: Bind = prototype.bind;

function bindInScope(this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown): unknown {
  // Node's own for what request() never does (a bound `this`, or no function: it throws the right error).
  if (thisArg !== undefined || typeof fn !== 'function') return nodeBind.call(this, fn, thisArg);
  const resource = this;
  return function bound(this: unknown, ...args: unknown[]): unknown {
    return resource.runInAsyncScope(fn, this, ...args);
  };
}

/** What request() would set itself; `silent` is not in node's types but is one of the options it reads. */
const withBody = { endStream: false, parent: 0, exclusive: false, silent: false } as ClientSessionRequestOptions;
const withoutBody = { endStream: true, parent: 0, exclusive: false, silent: false } as ClientSessionRequestOptions;

/** session.request(headers, { endStream }), the same stream, without AsyncResource.bind's per-call accessor. */
export function openStream(session: ClientHttp2Session, headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
  prototype.bind = bindInScope;
  try {
    // request() copies the options before it changes them: one object serves every call.
    return session.request(headers, endStream ? withoutBody : withBody);
  } finally {
    prototype.bind = nodeBind;
  }
}
