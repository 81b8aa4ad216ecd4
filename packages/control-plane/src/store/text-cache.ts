/**
 * Content-addressed texts kept in memory, least recently used first out, bounded by their total
 * length. An entry never goes stale (a hash names one text forever), so the cache needs no
 * invalidation: reading a version whose resources are already here costs no etcd read and no parse.
 * Parsed values are deep-frozen and shared between every config that holds them; whoever changes a
 * config clones first (versioning/config-draft.ts).
 */
import { deepFreeze } from './deep-freeze.js';

interface Entry {
  text: string;
  value?: unknown;
}

export class TextCache {
  private readonly entries = new Map<string, Entry>();
  private chars = 0;

  constructor(private readonly maxChars: number) {}

  text(hash: string): string | undefined {
    return this.touch(hash)?.text;
  }

  /** The parsed, frozen value of a cached text (parsed on first use); undefined when not cached. */
  value(hash: string): unknown {
    const entry = this.touch(hash);
    if (entry === undefined) return undefined;
    if (!('value' in entry)) entry.value = deepFreeze(JSON.parse(entry.text));
    return entry.value;
  }

  /** Adds a text; `value` is its parsed form when the caller has it already (it is frozen here). */
  add(hash: string, text: string, value?: unknown): void {
    const known = this.entries.get(hash);
    if (known !== undefined) {
      if (value !== undefined && !('value' in known)) known.value = deepFreeze(value);
      this.touch(hash);
      return;
    }
    this.entries.set(hash, value === undefined ? { text } : { text, value: deepFreeze(value) });
    this.chars += text.length;
    for (const [oldest, entry] of this.entries) {
      if (this.chars <= this.maxChars || oldest === hash) break;
      this.entries.delete(oldest);
      this.chars -= entry.text.length;
    }
  }

  private touch(hash: string): Entry | undefined {
    const entry = this.entries.get(hash);
    if (entry === undefined) return undefined;
    this.entries.delete(hash);
    this.entries.set(hash, entry);
    return entry;
  }
}
