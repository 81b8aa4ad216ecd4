/** What every command gets: the client, the output format, and where to write. */
import type { ApiClient } from './client.js';
import type { Format } from './output.js';

export interface Context {
  client: ApiClient;
  format: Format;
  /** A line (or block) of the command's result, on stdout. */
  out(text: string): void;
  /** Progress and notes for people, on stderr, so stdout stays parseable. */
  note(text: string): void;
}
