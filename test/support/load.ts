/** Load for end-to-end tests: request loops against one URL, bounded in time and count. */
import { Agent, request } from 'undici';

/**
 * Runs `loops` request loops against `url` until `until` settles or `max` requests were started;
 * resolves with every status seen (0 for a transport error), in completion order.
 */
export async function load(url: string, loops: number, until: Promise<unknown>, options: { max?: number; agent?: Agent.Options } = {}): Promise<number[]> {
  const agent = new Agent({ connections: loops, ...options.agent });
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const statuses: number[] = [];
  let stop = false;
  let started = 0;
  void until.then(() => {
    stop = true;
  });
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (!stop && started < max) {
        started++;
        try {
          const res = await request(url, { dispatcher: agent });
          await res.body.dump();
          statuses.push(res.statusCode);
        } catch {
          statuses.push(0);
        }
      }
    }),
  );
  await agent.close();
  return statuses;
}
