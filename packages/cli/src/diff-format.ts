/** The control plane's structured diff (`changes`), one line each: `+` added, `-` removed, `~` changed. */

export interface Change {
  op: 'add' | 'remove' | 'change';
  path: string;
  before?: unknown;
  after?: unknown;
}

function short(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? 'undefined' : text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

export function formatChanges(changes: Change[]): string {
  return changes
    .map((c) => {
      if (c.op === 'add') return `+ ${c.path}: ${short(c.after)}`;
      if (c.op === 'remove') return `- ${c.path}: ${short(c.before)}`;
      return `~ ${c.path}: ${short(c.before)} -> ${short(c.after)}`;
    })
    .join('\n');
}
