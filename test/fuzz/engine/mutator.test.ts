import { describe, expect, it } from 'vitest';
import { MUTATION_NAMES, Mutator } from './mutator.js';
import { Rng } from './rng.js';

const REQUEST = Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nhello world!', 'latin1');

function mutator(seed: number, dictionary: string[] = ['Transfer-Encoding', 'chunked'], other = Buffer.from('POST / HTTP/1.0\r\nX: y\r\n\r\n')): Mutator {
  return new Mutator(new Rng(seed), dictionary, () => other);
}

describe('Rng', () => {
  it('is a function of its seed alone', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 20 }, () => a.u32());
    expect(Array.from({ length: 20 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 20 }, () => c.u32())).not.toEqual(xs);
  });

  it('below(n) stays in [0, n) and reaches both ends', () => {
    const r = new Rng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = r.below(5);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(5);
      seen.add(v);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('Mutator', () => {
  it('every mutation respects maxLen and leaves its argument alone', () => {
    const m = mutator(1);
    for (const name of MUTATION_NAMES) {
      for (let i = 0; i < 200; i++) {
        const input = Buffer.from(REQUEST);
        const out = m.apply(name, input, 64);
        expect(input.equals(REQUEST), name).toBe(true);
        if (out) expect(out.length, name).toBeLessThanOrEqual(Math.max(64, REQUEST.length));
      }
    }
  });

  it('mutateOnce changes the input nearly always and never grows past maxLen', () => {
    const m = mutator(2);
    let same = 0;
    for (let i = 0; i < 2000; i++) {
      const out = m.mutateOnce(REQUEST, 100);
      expect(out.length).toBeLessThanOrEqual(100);
      if (out.equals(REQUEST)) same++;
    }
    // Some ops can hit a no-op by chance (a shuffle of equal bytes, an overwrite with the same token).
    expect(same).toBeLessThan(100);
  });

  it('is deterministic for a seed', () => {
    const run = (seed: number) => {
      const m = mutator(seed);
      let d: Buffer = REQUEST;
      const out: string[] = [];
      for (let i = 0; i < 100; i++) out.push((d = m.mutateOnce(d, 256)).toString('latin1'));
      return out;
    };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  it('line mutations work on whole CRLF lines', () => {
    const m = mutator(3);
    const head = Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n', 'latin1');
    const lines = head.toString('latin1').split(/(?<=\n)/);
    for (let i = 0; i < 50; i++) {
      const out = m
        .apply('lineDelete', head, 4096)!
        .toString('latin1')
        .split(/(?<=\n)/);
      expect(out.length).toBe(lines.length - 1);
      expect(out.every((l) => lines.includes(l))).toBe(true);
      const dup = m
        .apply('lineDuplicate', head, 4096)!
        .toString('latin1')
        .split(/(?<=\n)/);
      expect(dup.length).toBe(lines.length + 1);
      expect(dup.every((l) => lines.includes(l))).toBe(true);
      const swapped = m
        .apply('lineSwap', head, 4096)!
        .toString('latin1')
        .split(/(?<=\n)/);
      expect([...swapped].sort()).toEqual([...lines].sort());
    }
  });

  it('lineEnding replaces a terminator, keeping the line', () => {
    const m = mutator(4);
    const endings = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const out = m.apply('lineEnding', Buffer.from('A: 1\r\nB: 2\r\n', 'latin1'), 4096)!.toString('latin1');
      expect(out.startsWith('A: 1')).toBe(true);
      expect(out).toContain('B: 2');
      endings.add(out.slice(4, out.indexOf('B')));
    }
    expect(endings.has('\n')).toBe(true);
    expect(endings.has('\r')).toBe(true);
  });

  it('number mutations edit ASCII digit runs (Content-Length, chunk sizes)', () => {
    const m = mutator(5);
    const values = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const out = m.apply('interestingAsciiInteger', Buffer.from('Content-Length: 12\r\n'), 4096)!.toString('latin1');
      const match = /^Content-Length: (.*)\r\n$/s.exec(out);
      if (match) values.add(match[1]!);
      const changed = m.apply('changeAsciiInteger', Buffer.from('Content-Length: 12\r\n'), 4096)!.toString('latin1');
      expect(changed).toMatch(/^Content-Length: -?\d+\r\n$/);
    }
    expect(values.has('18446744073709551616')).toBe(true);
    expect(values.has('-1')).toBe(true);
  });

  it('dictionary and cross-over mutations bring in outside bytes', () => {
    const m = mutator(6);
    let token = false;
    let crossed = false;
    for (let i = 0; i < 100; i++) {
      if (m.apply('dictionaryInsert', REQUEST, 4096)!.includes('Transfer-Encoding')) token = true;
      if (m.apply('lineFromOther', REQUEST, 4096)!.includes('X: y\r\n')) crossed = true;
    }
    expect(token).toBe(true);
    expect(crossed).toBe(true);
  });
});
