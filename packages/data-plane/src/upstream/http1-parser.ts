/**
 * Node's own HTTP/1 parser: llhttp compiled to native code, the one node:http runs on. It is
 * reached through `_http_common`, which node keeps for exactly this kind of use but does not
 * document, so it is looked up defensively: where it is missing the data plane falls back to
 * undici (upstream-pools.ts). Measured on the proxy path it costs about half of undici's wasm
 * parser with its per-header JS callbacks (bench/README.md).
 */
import { createRequire } from 'node:module';

/** The subset of node's HTTPParser binding this client uses. */
export interface NativeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  /** Bytes parsed, or an Error carrying `code` (HPE_*) and `reason`. */
  execute(data: Buffer): number | Error;
  /** Signals end of input; an Error when the message so far is incomplete. */
  finish(): undefined | Error;
  close(): void;
  free(): void;
  [callback: number]: unknown;
}

export interface NativeHttpParserClass {
  new (): NativeHttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

function load(): { parser: NativeHttpParserClass; methods: readonly string[] } | undefined {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { HTTPParser?: NativeHttpParserClass; methods?: readonly string[] };
    const parser = common.HTTPParser;
    if (typeof parser !== 'function' || !Array.isArray(common.methods)) return undefined;
    for (const k of ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const)
      if (typeof parser[k] !== 'number') return undefined;
    const probe = new parser();
    if (typeof probe.initialize !== 'function' || typeof probe.execute !== 'function' || typeof probe.finish !== 'function') return undefined;
    return { parser, methods: common.methods };
  } catch {
    return undefined;
  }
}

const loaded = load();

/** Node's HTTPParser, or undefined on a runtime without it. */
export const HTTPParser: NativeHttpParserClass | undefined = loaded?.parser;
/**
 * A head's header pairs: those llhttp handed over early through kOnHeaders (in batches of 32, and
 * — once it has done that on a connection — for every later head) followed by those passed to
 * kOnHeadersComplete, which are undefined when every pair came early. `early` only grows by
 * concatenation, so neither array is modified.
 */
export function headPairs(early: string[] | null, given: string[] | undefined): string[] {
  if (early === null) return given ?? [];
  return given === undefined ? early : early.concat(given);
}

/** Method names by the parser's method number (kOnHeadersComplete's fourth argument). */
export const HTTP_METHODS: readonly string[] = loaded?.methods ?? [];
