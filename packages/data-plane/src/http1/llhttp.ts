/**
 * Node's own HTTP/1 parser — llhttp compiled to native code, the one node:http runs on — and the
 * only module that knows how to call it. Node reaches it through `_http_common`, which it keeps
 * for its own use and documents as deprecated for everyone else (DEP0199), so everything that
 * depends on the binding's calling convention is here, behind Http1Parser and its named events:
 *
 * - the binding calls numbered callback slots (kOnHeadersComplete …) with positional arguments;
 * - it hands header pairs over early, 32 at a time, through kOnHeaders, and once it has done so
 *   on a parser it does so for every later head too (the target with them);
 * - trailer fields of a chunked message arrive through kOnHeaders as well, after the head;
 * - execute() answers the bytes parsed or an Error carrying `code` (HPE_*), `reason` and
 *   `bytesParsed`; finish() answers an Error when the message so far is incomplete.
 *
 * What the binding does is checked at start-up by a behavioural self-test
 * (parser-self-test.ts); where it is missing or misbehaves the data plane serves with node:http
 * and undici instead. Measured on the proxy path this parser costs about half of undici's wasm
 * one with its per-header JS callbacks (bench/README.md).
 */
import { createRequire } from 'node:module';

/** The binding's instance methods this module uses. */
interface Binding {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | Error;
  finish(): undefined | Error;
  close(): void;
  [slot: number]: unknown;
}

interface BindingClass {
  new (): Binding;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientChunkedLength?: number;
}

/** What the parser does after a head (the answer of Http1Events.onHead). */
export const AFTER_HEAD = {
  /** Parse the body as the head frames it. */
  BODY: 0,
  /** The message has no body (a HEAD request's answer): go on to the next message. */
  NO_BODY: 1,
  /**
   * Stop right after the head: execute() returns, and the caller reads what follows itself. The
   * parser goes on with the next message from the next execute() (node resumes it after what
   * llhttp takes for a protocol switch), with no reset.
   */
  STOP: 2,
} as const;

/** A parse failure: llhttp's error code (HPE_*), its reason, and where it stopped. */
export interface Http1ParseError extends Error {
  readonly code: string;
  readonly reason: string;
  readonly bytesParsed: number;
}

/**
 * The parser's events, called from inside execute() or finish(). The handler must not call
 * execute() again from inside one of them.
 */
export interface Http1Events {
  /** The first byte of a message. */
  onMessageBegin(): void;
  /**
   * The head is complete. `headers` is the flat `[name, value, …]` list as received (latin1);
   * `method` and `url` are '' for a response, `status` and `statusText` 0 and '' for a request.
   * Returns one of AFTER_HEAD.
   */
  onHead(
    versionMajor: number,
    versionMinor: number,
    headers: string[],
    method: string,
    url: string,
    status: number,
    statusText: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number;
  /** Body bytes (a copy the handler owns), chunk framing removed. */
  onBody(chunk: Buffer): void;
  /** The message ended. Trailer fields of a chunked message are dropped: they frame nothing. */
  onMessageComplete(): void;
}

export type ParserKind = 'request' | 'response';

function load(): { Binding: BindingClass; methods: readonly string[] } | string {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { HTTPParser?: BindingClass; methods?: readonly string[] };
    const Binding = common.HTTPParser;
    if (typeof Binding !== 'function') return '_http_common has no HTTPParser';
    if (!Array.isArray(common.methods)) return '_http_common has no method list';
    for (const k of ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const) {
      if (typeof Binding[k] !== 'number') return `HTTPParser.${k} is missing`;
    }
    const probe = new Binding();
    for (const m of ['initialize', 'execute', 'finish', 'close'] as const) if (typeof probe[m] !== 'function') return `HTTPParser#${m} is missing`;
    return { Binding, methods: common.methods };
  } catch (err) {
    return `_http_common cannot be loaded: ${(err as Error).message}`;
  }
}

const loaded = load();
const Native = typeof loaded === 'string' ? undefined : loaded.Binding;
const METHODS: readonly string[] = typeof loaded === 'string' ? [] : loaded.methods;

/** Why the binding cannot be used at all, or undefined when it loaded (the self-test decides the rest). */
export const bindingProblem: string | undefined = typeof loaded === 'string' ? loaded : undefined;

function closedError(): Http1ParseError {
  return Object.assign(new Error('the parser is closed'), { code: 'LB_PARSER_CLOSED', reason: 'the parser is closed', bytesParsed: 0 });
}

/** A header list: pairs handed over early (in batches) followed by those given with the head. */
function concatPairs(early: string[] | null, given: string[] | undefined): string[] {
  if (early === null) return given ?? [];
  return given === undefined ? early : early.concat(given);
}

/**
 * One HTTP/1 message stream (a connection's worth), parsed strictly as node:http parses it. A
 * request parser allows no leniency at all. A response parser allows one: a Content-Length among
 * a chunked response's trailer fields, which frame nothing (RFC 9110 §6.5.1) and are dropped.
 * Because that flag would also let a head carry both Content-Length and Transfer-Encoding, the
 * response's owner must refuse such a head itself (http1-connection.ts does).
 */
export class Http1Parser {
  private readonly binding: Binding;
  /** Pairs handed over early for the head being parsed. */
  private early: string[] | null = null;
  private earlyUrl = '';
  /** The current message's head is complete: pairs handed over now are trailers. */
  private inBody = false;
  /** execute() or finish() is on the stack: freeing the native parser now would pull it from under itself. */
  private busy = false;
  /** close() was called (and runs once the parser is no longer busy). */
  private closed = false;

  constructor(
    kind: ParserKind,
    private readonly events: Http1Events,
    maxHeaderSize = 0,
  ) {
    if (Native === undefined) throw new Error(`node's HTTP parser is not available: ${bindingProblem}`);
    const binding = new Native();
    const lenient = kind === 'response' ? (Native.kLenientChunkedLength ?? 0) : 0;
    binding.initialize(kind === 'request' ? Native.REQUEST : Native.RESPONSE, {}, maxHeaderSize, lenient);
    binding[Native.kOnMessageBegin] = this.onMessageBegin;
    binding[Native.kOnHeaders] = this.onHeaders;
    binding[Native.kOnHeadersComplete] = this.onHeadersComplete;
    binding[Native.kOnBody] = events.onBody.bind(events);
    binding[Native.kOnMessageComplete] = this.onMessageComplete;
    this.binding = binding;
  }

  /** Parses `data`: the number of bytes parsed (all of them, unless a head answered STOP), or the error. */
  execute(data: Buffer): number | Http1ParseError {
    if (this.closed) return closedError();
    this.busy = true;
    try {
      return this.binding.execute(data) as number | Http1ParseError;
    } finally {
      this.busy = false;
      if (this.closed) this.binding.close();
    }
  }

  /** The input ended: completes a body delimited by the close, or says the message was cut short. */
  finish(): Http1ParseError | undefined {
    if (this.closed) return closedError();
    this.busy = true;
    try {
      return this.binding.finish() as Http1ParseError | undefined;
    } finally {
      this.busy = false;
      if (this.closed) this.binding.close();
    }
  }

  /**
   * Frees the native parser; nothing is parsed afterwards. Every connection must call it when it
   * ends: the binding's parsers are not garbage-collected (node:http closes its own too), so a
   * parser left open costs about 2 KiB for the life of the process. Safe from inside an event.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.busy) this.binding.close();
  }

  private readonly onMessageBegin = (): void => {
    this.early = null;
    this.earlyUrl = '';
    this.inBody = false;
    this.events.onMessageBegin();
  };

  private readonly onHeaders = (headers: string[], url: string): void => {
    if (this.inBody) return;
    this.early = concatPairs(this.early, headers);
    this.earlyUrl += url;
  };

  private readonly onHeadersComplete = (
    versionMajor: number,
    versionMinor: number,
    headers: string[] | undefined,
    method: number | undefined,
    url: string | undefined,
    status: number | undefined,
    statusText: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    const pairs = concatPairs(this.early, headers);
    this.early = null;
    let target = url ?? '';
    if (this.earlyUrl !== '') {
      target = this.earlyUrl + target;
      this.earlyUrl = '';
    }
    this.inBody = true;
    const methodName = method === undefined ? '' : (METHODS[method] ?? '');
    return this.events.onHead(versionMajor, versionMinor, pairs, methodName, target, status ?? 0, statusText ?? '', upgrade, keepAlive);
  };

  private readonly onMessageComplete = (): void => {
    this.inBody = false;
    this.events.onMessageComplete();
  };
}

/** Whether Http1Parser can be constructed on this runtime (the self-test has the final say). */
export const nativeParserLoaded = Native !== undefined;
