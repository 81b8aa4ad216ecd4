import { describe, expect, it } from 'vitest';
import { CoalescedRefresh } from '../src/store/coalesced-refresh.js';

/** A pass that waits until released, so tests decide when it ends. */
function gatedPasses(results: boolean[] = []) {
  const releases: Array<() => void> = [];
  let passes = 0;
  const pass = () =>
    new Promise<boolean>((resolve) => {
      const ok = results[passes] ?? true;
      passes++;
      releases.push(() => resolve(ok));
    });
  return { pass, releases, count: () => passes };
}

describe('CoalescedRefresh', () => {
  it('runs one more pass for any number of requests made during a pass', async () => {
    const g = gatedPasses();
    const refresh = new CoalescedRefresh(g.pass, () => false);
    const first = refresh.request();
    await refresh.request();
    await refresh.request(); // both fold into one extra pass and resolve at once
    expect(g.count()).toBe(1);
    g.releases[0]!();
    await new Promise((r) => setImmediate(r));
    expect(g.count()).toBe(2);
    g.releases[1]!();
    await first;
    expect(g.count()).toBe(2);
  });

  it('stops after a failed pass and after its owner stopped', async () => {
    const failing = gatedPasses([false]);
    const a = new CoalescedRefresh(failing.pass, () => false);
    const running = a.request();
    void a.request();
    failing.releases[0]!();
    await running;
    expect(failing.count()).toBe(1);

    let stopped = false;
    const g = gatedPasses();
    const b = new CoalescedRefresh(g.pass, () => stopped);
    const run = b.request();
    void b.request();
    stopped = true;
    g.releases[0]!();
    await run;
    expect(g.count()).toBe(1);
  });
});
