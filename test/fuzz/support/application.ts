/**
 * The application behind a fuzz target's server: reads the request body first or not, answers on
 * this turn or a later one, and gives up on a client that left mid-body, as a real one would.
 * Shared by the targets that drive a server (targets/server.ts, targets/http2-server.ts); only
 * types are imported, so loading it compiles none of the code under test early.
 */
import type { ProxyRequest, ProxyResponse } from '../../../packages/data-plane/src/proxy/exchange.js';

export function serve(
  req: ProxyRequest,
  res: ProxyResponse,
  how: { readBody: boolean; later: boolean },
  answer: (req: ProxyRequest, res: ProxyResponse) => void,
): void {
  req.on('error', () => {});
  const go = () => {
    if (how.later) setImmediate(answer, req, res);
    else answer(req, res);
  };
  if (how.readBody) {
    req.on('end', go);
    req.on('close', () => {
      if (!res.writableFinished && !res.destroyed) res.destroy();
    });
    req.resume();
  } else go();
}
