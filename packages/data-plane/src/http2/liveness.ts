/**
 * The liveness PING both sides of the proxy run on their HTTP/2 sessions (client sessions in
 * server/http2-server.ts, backend sessions in upstream/http2-upstream.ts), on the upstream
 * sweeper's tick: a session silent for the interval gets a PING, and one that has not answered
 * within as long again is dead. Silence is what the owner stamps in `lastSeen` (streams opening
 * and ending, bytes moving); an answered PING stamps it too. A peer gone without a FIN or RST, and
 * a Node 20 session that nghttp2 ended without telling node, never answer.
 */
import type { Http2Session } from 'node:http2';
import { coarseClock } from '../upstream/connection-sweeper.js';

/** What the check keeps per session (coarseClock() ms). */
export interface Liveness {
  /** The last sign of life. */
  lastSeen: number;
  /** When the unanswered PING went out; 0: none outstanding. */
  pingSentAt: number;
}

/** One tick's check of `session`: PING it when silent past `intervalMs`; `dead()` when a PING went unanswered as long. */
export function checkLiveness(session: Http2Session, state: Liveness, now: number, intervalMs: number, dead: () => void): void {
  if (state.pingSentAt !== 0) {
    if (now - state.pingSentAt > intervalMs) dead();
    return;
  }
  if (now - state.lastSeen <= intervalMs) return;
  state.pingSentAt = now;
  try {
    session.ping((err) => {
      state.pingSentAt = 0;
      if (err === null) state.lastSeen = coarseClock();
    });
  } catch {
    // A session node will not let ping any more (too many unanswered): it is not answering.
    dead();
  }
}
