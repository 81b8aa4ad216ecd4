/**
 * How the proxy ends a node:http2 session, client side and backend side alike: destroy() on a
 * later turn of the event loop, never on nghttp2's stack, and never through node's close().
 *
 * Node 20 carries nghttp2 1.61, which aborts the whole process (an assert in
 * nghttp2_session_mem_recv2, fixed in nghttp2 1.69, which Node 22 and 24 carry) when a session is
 * terminated inside one of nghttp2's callbacks and a frame of the wrong length follows in the same
 * read. A stream's events, and whatever runs on them (a promise settled, a pool closed in its
 * continuation), can be inside such a callback; so can node's close(), which destroys the session
 * while refusing a stream that came after it. The fuzz targets found both: four frames from a
 * client (GOAWAY, HEADERS, a WINDOW_UPDATE of five bytes) and a pool closed as a response ended.
 *
 * Node destroys a session itself too: when nghttp2 reports an error node does not handle
 * (onSessionInternalError), after a GOAWAY with an error code, when its socket fails. On Node 20
 * that can happen while nghttp2 is still reading: the http2-upstream fuzz target found 56 bytes
 * from a backend that abort the process that way, every time (`nghttp2_session_mem_recv2:
 * Assertion iframe->state == NGHTTP2_IB_IGN_ALL`), and an input that aborted it about once in
 * 3,400 replays later, in the garbage collector (`~Http2Session`: `current_nghttp2_memory_ == 0`),
 * which has not aborted since in 24,000. deferDestroys() makes every destroy() of a session, node's
 * own included, take effect on the next turn of the event loop.
 *
 * close() has a second fault on Node 20: after a connection error nghttp2 finds inside a read it
 * wants neither to read nor to write, node is never told, and close() waits for such a session for
 * ever. destroy() ends it; callers wait until nothing is left to lose (no stream, or only streams
 * already settled), and destroy() sends GOAWAY too.
 */
import type { Http2Session } from 'node:http2';

/**
 * Destroys `session` on the next turn of the event loop, unless `stillNeeded()` says otherwise by
 * then. A session under deferDestroys needs this only for the wait itself: the client side closes
 * a session after its last stream, but node reports a stream that came in the same read one tick
 * later. Anything else just calls destroy().
 */
export function destroyOffNghttp2Stack(session: Http2Session, stillNeeded: () => boolean): void {
  setImmediate(() => {
    if (!session.destroyed && !stillNeeded()) session.destroy();
  });
}

/**
 * From now on `session.destroy()` — whoever calls it, node's internals included — only asks: the
 * session is destroyed, with the first error and code given, on the next turn of the event loop.
 * `onRequested` hears each request at once, so that the owner stops putting streams on a session
 * that is going.
 */
export function deferDestroys(session: Http2Session, onRequested?: () => void): void {
  const destroyNow = session.destroy.bind(session);
  let requested = false;
  session.destroy = ((error?: Error | number, code?: number) => {
    onRequested?.();
    if (requested) return session;
    requested = true;
    setImmediate(() => destroyNow(error as Error, code));
    return session;
  }) as Http2Session['destroy'];
}
