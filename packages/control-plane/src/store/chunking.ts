/**
 * Content-defined chunking of large texts (a pool of 50,000 backends is several MiB of JSON; etcd
 * refuses values above its request limit). A cut falls where a rolling hash of the last 32
 * characters has its top bits clear, so the cuts depend on the text around them, not on offsets:
 * changing one backend changes the chunk around it, and every other chunk (and its hash, and the
 * object stored under it) stays the same. This is Gear hashing, as in FastCDC.
 */

export interface ChunkSizes {
  /** No cut before this many characters. */
  minChars: number;
  /** A cut at the latest here, so a chunk's UTF-8 size stays below 3 × maxChars bytes. */
  maxChars: number;
  /** Top bits of the rolling hash that must be zero for a cut: about 2^bits characters apart. */
  bits: number;
}

/** Averages ~64 Ki characters; at most 256 Ki (≤ 768 KiB of UTF-8), well inside etcd's 1.5 MiB. */
export const DEFAULT_CHUNK_SIZES: ChunkSizes = { minChars: 16 * 1024, maxChars: 256 * 1024, bits: 16 };

/** 256 fixed pseudo-random words (splitmix32 from a constant seed): the same cuts on every replica, forever. */
const GEAR = (() => {
  const table = new Uint32Array(256);
  let seed = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    seed = (seed + 0x9e3779b9) >>> 0;
    let z = seed;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    table[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return table;
})();

/** Splits `text` into chunks whose concatenation is `text`; a text of at most maxChars stays whole. */
export function splitText(text: string, sizes: ChunkSizes = DEFAULT_CHUNK_SIZES): string[] {
  if (text.length <= sizes.maxChars) return [text];
  const shift = 32 - sizes.bits;
  const chunks: string[] = [];
  let start = 0;
  let hash = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    hash = ((hash << 1) + GEAR[code & 0xff]!) >>> 0;
    const length = i + 1 - start;
    if (length < sizes.minChars) continue;
    if (hash >>> shift !== 0 && length < sizes.maxChars) continue;
    // Never between the two halves of a surrogate pair: each chunk must encode to UTF-8 on its own.
    if (code >= 0xd800 && code <= 0xdbff) continue;
    chunks.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}
