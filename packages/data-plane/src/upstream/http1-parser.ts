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
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

function load(): NativeHttpParserClass | undefined {
  try {
    const parser = (createRequire(import.meta.url)('_http_common') as { HTTPParser?: NativeHttpParserClass }).HTTPParser;
    if (typeof parser !== 'function') return undefined;
    for (const k of ['RESPONSE', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const) if (typeof parser[k] !== 'number') return undefined;
    const probe = new parser();
    if (typeof probe.initialize !== 'function' || typeof probe.execute !== 'function' || typeof probe.finish !== 'function') return undefined;
    return parser;
  } catch {
    return undefined;
  }
}

/** Node's HTTPParser, or undefined on a runtime without it. */
export const HTTPParser: NativeHttpParserClass | undefined = load();
