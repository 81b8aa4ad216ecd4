import { describe, expect, it } from 'vitest';
import type { Ejection, OutlierDetection } from '@lb/shared';
import { OutlierDetector } from '../src/outlier/outlier-detector.js';

const SETTINGS: OutlierDetection = { consecutive5xx: 3, consecutiveGatewayErrors: 2, baseEjectionMs: 1000, maxEjectionPercent: 10, intervalMs: 500 };

function harness() {
  let now = 1_000_000;
  const timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const reports: Ejection[] = [];
  const changes: string[] = [];
  const detector = new OutlierDetector({
    clock: { now: () => now },
    onChange: (pool) => changes.push(pool),
    report: (e) => reports.push(e),
    defer: (fn) => fn(),
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return { cancel: () => (t.cancelled = true) };
    },
  });
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.filter((x) => !x.cancelled && x.at <= now)) {
      t.cancelled = true;
      t.fn();
    }
  };
  return { detector, reports, changes, advance, now: () => now };
}

describe('OutlierDetector', () => {
  it('ejects after consecutive 5xx, reports it, and lets the backend back after the ejection time', () => {
    const h = harness();
    const t = h.detector.configure('web', SETTINGS, ['a', 'b', 'c']).get('a')!;
    t.onStatus(500);
    t.onStatus(500);
    t.onStatus(200); // a success resets the run
    t.onStatus(500);
    t.onStatus(500);
    expect(h.detector.isEjected('web', 'a')).toBe(false);
    t.onStatus(500);
    expect(h.detector.isEjected('web', 'a')).toBe(true);
    expect(h.reports).toEqual([{ pool: 'web', backendId: 'a', ejected: true, reason: '3 consecutive 5xx', untilUnixMs: h.now() + 1000 }]);
    expect(h.changes).toEqual(['web']);
    h.advance(1000);
    expect(h.detector.isEjected('web', 'a')).toBe(false);
    expect(h.reports[1]).toMatchObject({ ejected: false });
  });

  it('counts gateway errors (connect, reset, timeout, 502-504) separately, and grows the ejection time on repeat', () => {
    const h = harness();
    const t = h.detector.configure('web', SETTINGS, ['a']).get('a')!;
    t.onGatewayError();
    t.onStatus(503);
    expect(h.detector.isEjected('web', 'a')).toBe(true);
    h.advance(1000);
    t.onStatus(502);
    t.onStatus(504);
    expect(h.reports.at(-1)!.untilUnixMs - h.now()).toBe(2000); // second in a row: twice as long
    h.advance(2000);
    h.advance(5000); // a long clean stretch earns the multiplier back
    t.onGatewayError();
    t.onGatewayError();
    expect(h.reports.at(-1)!.untilUnixMs - h.now()).toBe(1000);
  });

  it('respects maxEjectionPercent but always allows one ejection', () => {
    const h = harness();
    const trackers = h.detector.configure('web', SETTINGS, ['a', 'b', 'c']);
    for (const id of ['a', 'b']) for (let i = 0; i < 3; i++) trackers.get(id)!.onStatus(500);
    expect(h.detector.isEjected('web', 'a')).toBe(true);
    expect(h.detector.isEjected('web', 'b')).toBe(false); // 10% of 3 → 1 at a time
  });

  it('drops trackers of backends that left and turns off with the settings', () => {
    const h = harness();
    const t = h.detector.configure('web', SETTINGS, ['a', 'b']).get('a')!;
    for (let i = 0; i < 3; i++) t.onStatus(500);
    expect(h.detector.configure('web', SETTINGS, ['b']).has('a')).toBe(false);
    expect(h.detector.isEjected('web', 'a')).toBe(false);
    expect(h.detector.configure('web', undefined, ['b']).size).toBe(0);
  });

  it('adopts an ejection decided by another worker process', () => {
    const h = harness();
    h.detector.configure('web', SETTINGS, ['a', 'b']);
    h.detector.adopt({ pool: 'web', backendId: 'b', ejected: true, reason: 'x', untilUnixMs: h.now() + 500 });
    expect(h.detector.isEjected('web', 'b')).toBe(true);
    expect(h.reports).toEqual([]);
    h.advance(500);
    expect(h.detector.isEjected('web', 'b')).toBe(false);
  });
});
