import type { Rng } from './rng.js';

/**
 * libFuzzer's mutations over raw bytes, plus a few that know inputs are HTTP/1.1: lines end in CRLF,
 * numbers are ASCII (Content-Length, chunk sizes) and header names are case-insensitive tokens.
 * Every mutation returns a new Buffer no longer than maxLen; none edits its argument.
 */

type Op = (m: Mutator, data: Buffer, maxLen: number) => Buffer | undefined;

/** AFL's interesting integers, as 8/16/32-bit values. */
const INTERESTING_8 = [-128, -1, 0, 1, 16, 32, 64, 100, 127];
const INTERESTING_16 = [...INTERESTING_8, -32768, -129, 128, 255, 256, 512, 1000, 1024, 4096, 32767, 65535];
const INTERESTING_32 = [...INTERESTING_16, -2147483648, -100663046, -32769, 32768, 65536, 100663045, 2147483647, 4294967295];

/** Numbers written as text that break length and size parsing: signs, overflow, hex, float, huge. */
const INTERESTING_ASCII = [
  '0',
  '00',
  '-0',
  '1',
  '-1',
  '+1',
  '7',
  '8',
  '9',
  '10',
  '16',
  '127',
  '128',
  '255',
  '256',
  '1023',
  '1024',
  '4096',
  '65535',
  '65536',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '9007199254740991',
  '9007199254740992',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999999999',
  '0x10',
  'ff',
  'FFFFFFFF',
  'ffffffffffffffff',
  '1e3',
  '1.5',
  ' 1',
  '1 ',
  '1,1',
];

/** Line endings and whitespace that HTTP parsers disagree about. */
const LINE_ENDINGS = ['\r\n', '\n', '\r', '\r\r\n', ' \r\n', '\t\r\n', '\r\n ', '\r\n\t', '\0\r\n', ''];

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isLetter = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);

function clamp(data: Buffer, maxLen: number): Buffer {
  return data.length > maxLen ? data.subarray(0, maxLen) : data;
}

function splice(data: Buffer, at: number, remove: number, insert: Uint8Array): Buffer {
  return Buffer.concat([data.subarray(0, at), insert, data.subarray(at + remove)]);
}

/** The [start, end) of each line, end including its terminator ("\n" and anything before it). */
function lines(data: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0x0a) {
      out.push([start, i + 1]);
      start = i + 1;
    }
  }
  if (start < data.length) out.push([start, data.length]);
  return out;
}

/** The [start, end) of each run of ASCII digits. */
function digitRuns(data: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < data.length; i++) {
    if (!isDigit(data[i]!)) continue;
    let j = i;
    while (j < data.length && isDigit(data[j]!)) j++;
    out.push([i, j]);
    i = j;
  }
  return out;
}

const OPS: ReadonlyArray<readonly [string, Op]> = [
  [
    'eraseBytes',
    (m, d) => {
      if (d.length === 0) return undefined;
      const n = 1 + m.rng.below(m.rng.oneIn(4) ? d.length : Math.min(d.length, 8));
      const at = m.rng.below(d.length - n + 1);
      return splice(d, at, n, Buffer.alloc(0));
    },
  ],
  ['insertByte', (m, d, max) => (d.length >= max ? undefined : splice(d, m.rng.below(d.length + 1), 0, Buffer.from([m.randomByte()])))],
  [
    'insertRepeatedBytes',
    (m, d, max) => {
      const room = max - d.length;
      if (room < 1) return undefined;
      const n = Math.min(room, m.rng.oneIn(8) ? m.rng.range(128, 1024) : m.rng.range(1, 128));
      const byte = m.rng.pick([0x00, 0xff, 0x20, 0x41, 0x30, 0x0d, 0x0a, m.randomByte()]);
      return splice(d, m.rng.below(d.length + 1), 0, Buffer.alloc(n, byte));
    },
  ],
  [
    'changeByte',
    (m, d) => {
      if (d.length === 0) return undefined;
      const out = Buffer.from(d);
      out[m.rng.below(d.length)] = m.randomByte();
      return out;
    },
  ],
  [
    'changeBit',
    (m, d) => {
      if (d.length === 0) return undefined;
      const out = Buffer.from(d);
      const at = m.rng.below(d.length);
      out[at] = out[at]! ^ (1 << m.rng.below(8));
      return out;
    },
  ],
  [
    'shuffleBytes',
    (m, d) => {
      if (d.length < 2) return undefined;
      const n = m.rng.range(2, Math.min(d.length, 8));
      const at = m.rng.below(d.length - n + 1);
      const out = Buffer.from(d);
      for (let i = n - 1; i > 0; i--) {
        const j = m.rng.below(i + 1);
        const t = out[at + i]!;
        out[at + i] = out[at + j]!;
        out[at + j] = t;
      }
      return out;
    },
  ],
  [
    'changeAsciiInteger',
    (m, d, max) => {
      const runs = digitRuns(d);
      if (runs.length === 0) return undefined;
      const [s, e] = m.rng.pick(runs);
      let v = BigInt(d.toString('latin1', s, e));
      switch (m.rng.below(6)) {
        case 0:
          v += 1n;
          break;
        case 1:
          v -= 1n;
          break;
        case 2:
          v *= 2n;
          break;
        case 3:
          v /= 2n;
          break;
        case 4:
          v = BigInt(m.rng.u32());
          break;
        default:
          v *= 10n;
      }
      return clamp(splice(d, s, e - s, Buffer.from(v.toString(), 'latin1')), max);
    },
  ],
  [
    'interestingAsciiInteger',
    (m, d, max) => {
      const text = Buffer.from(m.rng.pick(INTERESTING_ASCII), 'latin1');
      const runs = digitRuns(d);
      if (runs.length > 0 && !m.rng.oneIn(4)) {
        const [s, e] = m.rng.pick(runs);
        return clamp(splice(d, s, e - s, text), max);
      }
      return clamp(splice(d, m.rng.below(d.length + 1), 0, text), max);
    },
  ],
  [
    'changeBinaryInteger',
    (m, d) => {
      const width = m.rng.pick([1, 2, 4]);
      if (d.length < width) return undefined;
      const at = m.rng.below(d.length - width + 1);
      const out = Buffer.from(d);
      const table = width === 1 ? INTERESTING_8 : width === 2 ? INTERESTING_16 : INTERESTING_32;
      const v = m.rng.oneIn(2)
        ? m.rng.pick(table)
        : (width === 1 ? out.readUInt8(at) : width === 2 ? out.readUInt16LE(at) : out.readUInt32LE(at)) + m.rng.range(-35, 35);
      const mask = width === 4 ? 0xffffffff : (1 << (width * 8)) - 1;
      const u = (v & mask) >>> 0;
      if (width === 1) out.writeUInt8(u & 0xff, at);
      else if (width === 2) (m.rng.oneIn(2) ? out.writeUInt16LE : out.writeUInt16BE).call(out, u & 0xffff, at);
      else (m.rng.oneIn(2) ? out.writeUInt32LE : out.writeUInt32BE).call(out, u, at);
      return out;
    },
  ],
  [
    'copyPart',
    (m, d, max) => {
      if (d.length < 2) return undefined;
      const n = m.rng.range(1, Math.min(d.length, 64));
      const from = m.rng.below(d.length - n + 1);
      const part = Buffer.from(d.subarray(from, from + n));
      if (m.rng.oneIn(2)) return clamp(splice(d, m.rng.below(d.length + 1), 0, part), max);
      const to = m.rng.below(d.length - n + 1);
      return splice(d, to, n, part);
    },
  ],
  [
    'crossOver',
    (m, d, max) => {
      const other = m.other();
      if (!other || other.length === 0) return undefined;
      const a = m.rng.below(d.length + 1);
      const b = m.rng.below(other.length + 1);
      return clamp(Buffer.concat([d.subarray(0, a), other.subarray(b)]), max);
    },
  ],
  [
    'insertOtherPart',
    (m, d, max) => {
      const other = m.other();
      if (!other || other.length === 0) return undefined;
      const n = m.rng.range(1, Math.min(other.length, 128));
      const from = m.rng.below(other.length - n + 1);
      return clamp(splice(d, m.rng.below(d.length + 1), 0, other.subarray(from, from + n)), max);
    },
  ],
  [
    'dictionaryInsert',
    (m, d, max) => {
      if (m.dictionary.length === 0) return undefined;
      return clamp(splice(d, m.rng.below(d.length + 1), 0, m.rng.pick(m.dictionary)), max);
    },
  ],
  [
    'dictionaryOverwrite',
    (m, d, max) => {
      if (m.dictionary.length === 0) return undefined;
      const word = m.rng.pick(m.dictionary);
      const at = m.rng.below(d.length + 1);
      return clamp(splice(d, at, Math.min(word.length, d.length - at), word), max);
    },
  ],
  [
    'lineDuplicate',
    (m, d, max) => {
      const ls = lines(d);
      if (ls.length === 0) return undefined;
      const [s, e] = m.rng.pick(ls);
      return clamp(splice(d, e, 0, d.subarray(s, e)), max);
    },
  ],
  [
    'lineDelete',
    (m, d) => {
      const ls = lines(d);
      if (ls.length < 2) return undefined;
      const [s, e] = m.rng.pick(ls);
      return splice(d, s, e - s, Buffer.alloc(0));
    },
  ],
  [
    'lineSwap',
    (m, d) => {
      const ls = lines(d);
      if (ls.length < 2) return undefined;
      const i = m.rng.below(ls.length);
      let j = m.rng.below(ls.length - 1);
      if (j >= i) j++;
      const [x, y] = i < j ? [ls[i]!, ls[j]!] : [ls[j]!, ls[i]!];
      return Buffer.concat([d.subarray(0, x[0]), d.subarray(y[0], y[1]), d.subarray(x[1], y[0]), d.subarray(x[0], x[1]), d.subarray(y[1])]);
    },
  ],
  [
    'lineFromOther',
    (m, d, max) => {
      const other = m.other();
      const theirs = other ? lines(other) : [];
      if (!other || theirs.length === 0) return undefined;
      const [s, e] = m.rng.pick(theirs);
      const ours = lines(d);
      const at = ours.length === 0 ? 0 : m.rng.pick(ours)[m.rng.below(2)]!;
      return clamp(splice(d, at, 0, other.subarray(s, e)), max);
    },
  ],
  [
    'lineEnding',
    (m, d, max) => {
      const ls = lines(d).filter(([, e]) => d[e - 1] === 0x0a);
      if (ls.length === 0) return undefined;
      const [s, e] = m.rng.pick(ls);
      const terminatorStart = e >= 2 && d[e - 2] === 0x0d && e - 2 >= s ? e - 2 : e - 1;
      return clamp(splice(d, terminatorStart, e - terminatorStart, Buffer.from(m.rng.pick(LINE_ENDINGS), 'latin1')), max);
    },
  ],
  [
    'flipCase',
    (m, d) => {
      if (d.length === 0) return undefined;
      const start = m.rng.below(d.length);
      for (let k = 0; k < d.length; k++) {
        const at = (start + k) % d.length;
        if (isLetter(d[at]!)) {
          const out = Buffer.from(d);
          out[at] = out[at]! ^ 0x20;
          return out;
        }
      }
      return undefined;
    },
  ],
  ['truncate', (m, d) => (d.length === 0 ? undefined : d.subarray(0, m.rng.below(d.length)))],
];

export const MUTATION_NAMES: readonly string[] = OPS.map(([name]) => name);

export class Mutator {
  readonly rng: Rng;
  readonly dictionary: Buffer[];
  /** Another corpus entry for cross-over, or undefined when there is none. */
  readonly other: () => Buffer | undefined;

  constructor(rng: Rng, dictionary: readonly string[], other: () => Buffer | undefined) {
    this.rng = rng;
    this.dictionary = dictionary.filter((w) => w.length > 0).map((w) => Buffer.from(w, 'latin1'));
    this.other = other;
  }

  randomByte(): number {
    // Bytes that matter to a text protocol come up more often than chance would have them.
    if (this.rng.oneIn(2)) return this.rng.pick([0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x3b, 0x2c, 0x22, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x41, 0x61]);
    return this.rng.below(256);
  }

  /** One mutation of `data` (a different op is tried when one does not apply), at most maxLen bytes. */
  mutateOnce(data: Buffer, maxLen: number): Buffer {
    for (let attempt = 0; attempt < 16; attempt++) {
      const [, op] = OPS[this.rng.below(OPS.length)]!;
      const out = op(this, data, maxLen);
      if (out !== undefined) return out;
    }
    // Only an empty input at maxLen 0 gets here; nothing can change it.
    return data;
  }

  /** Applies one mutation by name: for tests. */
  apply(name: string, data: Buffer, maxLen: number): Buffer | undefined {
    const entry = OPS.find(([n]) => n === name);
    if (!entry) throw new Error(`no mutation named ${name}`);
    return entry[1](this, data, maxLen);
  }
}
