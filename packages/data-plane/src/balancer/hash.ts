/**
 * MurmurHash3 (x86, 32-bit) of a string's UTF-8 bytes: fast, synchronous, well distributed and the
 * same on every node, which is what the hash-based balancers need (every data plane must map a key
 * to the same backend). ASCII strings — IPs, ids, most header values — are hashed straight from
 * their char codes without allocating; other strings are encoded to UTF-8 first.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3's finalizer: a bijection on 32-bit integers with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function tail(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  return h ^ k;
}

export function hashBytes(bytes: Uint8Array, seed: number): number {
  const len = bytes.length;
  let h = seed | 0;
  const blocks = len & ~3;
  let i = 0;
  for (; i < blocks; i += 4) h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  const rest = len & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[i + 2]! << 16;
    if (rest >= 2) k ^= bytes[i + 1]! << 8;
    k ^= bytes[i]!;
    h = tail(h, k);
  }
  return fmix32(h ^ len);
}

/** MurmurHash3 x86_32 of `s` as UTF-8, as an unsigned 32-bit integer. */
export function hashString(s: string, seed = 0): number {
  const len = s.length;
  for (let j = 0; j < len; j++) if (s.charCodeAt(j) > 0x7f) return hashBytes(Buffer.from(s, 'utf8'), seed);
  let h = seed | 0;
  const blocks = len & ~3;
  let i = 0;
  for (; i < blocks; i += 4) h = mixBlock(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24));
  const rest = len & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= s.charCodeAt(i + 2) << 16;
    if (rest >= 2) k ^= s.charCodeAt(i + 1) << 8;
    k ^= s.charCodeAt(i);
    h = tail(h, k);
  }
  return fmix32(h ^ len);
}
