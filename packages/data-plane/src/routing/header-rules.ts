/**
 * A route's header edits (requestHeaders, responseHeaders), compiled once per snapshot and applied
 * to a flat `[name, value, …]` list: fields named in `remove` or `set` go, then `set`'s and `add`'s
 * fields are appended. Validation has kept framing, connection-level and Host headers out.
 */
import type { HeaderRules } from '@lb/shared';

export interface CompiledHeaderRules {
  /** Lower-case names whose fields are removed. */
  readonly remove: ReadonlySet<string>;
  /** `[name, value, …]` appended: set's, then add's. */
  readonly append: readonly string[];
}

export function compileHeaderRules(rules: HeaderRules | undefined): CompiledHeaderRules | undefined {
  if (rules === undefined) return undefined;
  const set = Object.entries(rules.set ?? {});
  const remove = new Set([...(rules.remove ?? []), ...set.map(([name]) => name)].map((n) => n.toLowerCase()));
  const append = [...set, ...Object.entries(rules.add ?? {})].flat();
  return { remove, append };
}

/** Edits `headers` in place. */
export function applyHeaderRules(headers: string[], rules: CompiledHeaderRules): void {
  if (rules.remove.size > 0) {
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      if (rules.remove.has(headers[r]!.toLowerCase())) continue;
      headers[w++] = headers[r]!;
      headers[w++] = headers[r + 1]!;
    }
    headers.length = w;
  }
  const append = rules.append;
  for (let i = 0; i < append.length; i++) headers.push(append[i]!);
}
