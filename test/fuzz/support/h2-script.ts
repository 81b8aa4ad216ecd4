/**
 * The script language of the HTTP/2 fuzz targets: what one peer sends, as ops.
 *
 *   0x00-0x0f [flags] [stream] [len] [len bytes]   a frame of that type, payload as given
 *   0x11 [flags] [stream] [n] [n field bytes]      a HEADERS frame whose block is encoded in HPACK: a
 *                                                  field byte < 0x80 is a literal from the target's
 *                                                  field table, >= 0x80 an indexed field (b & 0x7f),
 *                                                  valid or not. END_HEADERS is set unless flags has
 *                                                  0x80; flags 0x01, 0x08, 0x20 are END_STREAM,
 *                                                  PADDED, PRIORITY (0x40: depend on itself).
 *   0xfd / 0xfe / 0xfb                             wait a tick / half-close (FIN) / destroy (RST)
 *   any other byte                                 that byte, sent as it is
 *
 * Stream byte 0xff means stream 2^31-1.
 */
import { frame, headerBlock, hpackInteger } from '../../../packages/data-plane/test/h2-frames.js';

export const OP = { PAUSE: 0xfd, FIN: 0xfe, RST: 0xfb, BUILT_HEADERS: 0x11 } as const;
export const FRAME = { DATA: 0, HEADERS: 1, PUSH_PROMISE: 5, SETTINGS: 4, CONTINUATION: 9 } as const;

export type Step = Buffer | 'pause' | 'fin' | 'rst';

/** A header block from field bytes: literals from `fields`, and indexed fields (valid or not) as they come. */
function fieldBlock(fieldBytes: Buffer, fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat([...fieldBytes].map((b) => (b >= 0x80 ? Buffer.from(hpackInteger(b & 0x7f, 7, 0x80)) : headerBlock([fields[b % fields.length]!]))));
}

/** The script as bytes to send and the control steps between them; `onHeaders` hears every stream a HEADERS frame is sent on. */
export function compileScript(script: Buffer, fields: readonly (readonly [string, string])[], onHeaders: (stream: number) => void = () => {}): Step[] {
  const steps: Step[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length > 0) steps.push(Buffer.from(bytes));
    bytes = [];
  };
  let i = 0;
  while (i < script.length) {
    const op = script[i]!;
    if (op === OP.PAUSE || op === OP.FIN || op === OP.RST) {
      flush();
      steps.push(op === OP.PAUSE ? 'pause' : op === OP.FIN ? 'fin' : 'rst');
      i++;
      continue;
    }
    if ((op <= 0x0f || op === OP.BUILT_HEADERS) && i + 4 <= script.length) {
      const flags = script[i + 1]!;
      const streamByte = script[i + 2]!;
      const stream = streamByte === 0xff ? 0x7fffffff : streamByte;
      const len = script[i + 3]!;
      const payload = script.subarray(i + 4, i + 4 + len);
      i += 4 + len;
      let f: Buffer;
      if (op === OP.BUILT_HEADERS) {
        let frameFlags = flags & 0x29; // END_STREAM, PADDED, PRIORITY
        if ((flags & 0x80) === 0) frameFlags |= 0x04; // END_HEADERS
        const parts: Buffer[] = [];
        if (frameFlags & 0x08) parts.push(Buffer.from([3]));
        if (frameFlags & 0x20) parts.push(Buffer.from([0, 0, 0, flags & 0x40 ? stream : 0, 15]));
        parts.push(fieldBlock(payload, fields));
        if (frameFlags & 0x08) parts.push(Buffer.alloc(3));
        f = frame(FRAME.HEADERS, frameFlags, stream, Buffer.concat(parts));
        onHeaders(stream);
      } else {
        f = frame(op, flags, stream, payload);
        if (op === FRAME.HEADERS) onHeaders(stream);
      }
      for (const b of f) bytes.push(b);
      continue;
    }
    bytes.push(op);
    i++;
  }
  flush();
  return steps;
}
