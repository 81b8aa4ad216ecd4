/**
 * A route's conditions beyond host and path prefix — methods, headers, query parameters —
 * compiled once per snapshot into predicates the request path runs only for routes that have
 * them. Header names compare case-insensitively and several fields of one name are one list
 * (RFC 9110 §5.2, §5.3); values compare case-sensitively unless the condition says ignoreCase.
 * Regular expressions match the whole value.
 */
import type { RouteMatch, ValueMatch } from '@lb/shared';

/** What conditions read of a request. */
export interface RouteRequest {
  readonly method: string;
  /** Every field named `lowerName`, joined with ", "; undefined when there is none. */
  headerList(lowerName: string): string | undefined;
  /** The decoded value of query parameter `name` (its first occurrence); undefined when absent. */
  query(name: string): string | undefined;
}

type ValueTest = (value: string | undefined) => boolean;

interface NamedTest {
  readonly name: string;
  readonly test: ValueTest;
}

export interface RouteConditions {
  readonly methods: ReadonlySet<string> | undefined;
  readonly headers: readonly NamedTest[];
  readonly query: readonly NamedTest[];
}

function compileValue(m: ValueMatch): ValueTest {
  if (m.present !== undefined) {
    const present = m.present;
    return (v) => (v !== undefined) === present;
  }
  if (m.regex !== undefined) {
    const re = new RegExp(`^(?:${m.regex})$`);
    return (v) => v !== undefined && re.test(v);
  }
  const fold = m.ignoreCase === true;
  if (m.exact !== undefined) {
    const want = fold ? m.exact.toLowerCase() : m.exact;
    return fold ? (v) => v !== undefined && v.toLowerCase() === want : (v) => v === want;
  }
  const want = fold ? m.prefix!.toLowerCase() : m.prefix!;
  return fold ? (v) => v !== undefined && v.toLowerCase().startsWith(want) : (v) => v !== undefined && v.startsWith(want);
}

/** The compiled conditions of `match`, or undefined when it has none (host and path only). */
export function compileConditions(match: RouteMatch): RouteConditions | undefined {
  if (match.methods === undefined && match.headers === undefined && match.query === undefined) return undefined;
  return {
    methods: match.methods === undefined ? undefined : new Set(match.methods),
    headers: (match.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), test: compileValue(h) })),
    query: (match.query ?? []).map((q) => ({ name: q.name, test: compileValue(q) })),
  };
}

export function conditionsHold(c: RouteConditions, req: RouteRequest): boolean {
  if (c.methods !== undefined && !c.methods.has(req.method)) return false;
  for (let i = 0; i < c.headers.length; i++) {
    const h = c.headers[i]!;
    if (!h.test(req.headerList(h.name))) return false;
  }
  for (let i = 0; i < c.query.length; i++) {
    const q = c.query[i]!;
    if (!q.test(req.query(q.name))) return false;
  }
  return true;
}
