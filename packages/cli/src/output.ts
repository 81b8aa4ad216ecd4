/** How lbctl prints: aligned tables for people (the default), JSON or YAML for scripts (-o). */
import { stringify as toYaml } from 'yaml';
import { CliError, EXIT } from './exit-codes.js';

export const FORMATS = ['table', 'json', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

export function parseFormat(value: string): Format {
  if (!(FORMATS as readonly string[]).includes(value)) throw new CliError(EXIT.USAGE, `-o must be one of ${FORMATS.join(', ')}, not "${value}"`);
  return value as Format;
}

/** Columns padded to their widest cell; a header row in capitals. */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [headers, ...rows.map((row) => row.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** The document as JSON or YAML, or `render()` of it as text for the table format. */
export function formatted(format: Format, document: unknown, render: () => string): string {
  if (format === 'json') return JSON.stringify(document, null, 2);
  if (format === 'yaml') return toYaml(document).trimEnd();
  return render();
}

/** "3m ago" for a time in the past; the ISO time itself when it is far away. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 0) return iso;
  if (seconds < 90) return `${seconds}s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}
