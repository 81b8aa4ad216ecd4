/** Seeded mutations of HTTP messages, and a writer that splits them into random reads: shared by the mutation and differential tests. */
import type { Socket } from 'node:net';

/** A small deterministic generator (LCG): the same seed gives the same mutations. */
export function generator(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
}

export function mutate(seed: string, r: (n: number) => number, extra: readonly string[]): Buffer {
  let b = Buffer.from(seed, 'latin1');
  for (let k = r(4); k > 0; k--) {
    const i = r(b.length);
    switch (r(5)) {
      case 0:
        b[i] = r(256);
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, i), Buffer.from([r(256)]), b.subarray(i)]);
        break;
      case 2:
        b = b.subarray(0, i);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, i), Buffer.from('\r\n'), b.subarray(i)]);
        break;
      default:
        b = Buffer.concat([b, Buffer.from(extra[r(extra.length)]!, 'latin1')]);
    }
  }
  return b;
}

/** Writes `data` in random pieces, one per turn of the loop; `end` half-closes afterwards. */
export function trickle(socket: Socket, data: Buffer, r: (n: number) => number, end: boolean): void {
  let off = 0;
  const step = (): void => {
    if (socket.destroyed) return;
    if (off >= data.length) {
      if (end) socket.end();
      return;
    }
    const n = 1 + r(data.length);
    socket.write(data.subarray(off, off + n));
    off += n;
    setImmediate(step);
  };
  step();
}
