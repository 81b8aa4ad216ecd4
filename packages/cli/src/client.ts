/**
 * The REST client lbctl uses: JSON in and out, the bearer token on every request, and every
 * failure turned into a CliError with the exit code scripts rely on and the control plane's own
 * words (its problem document's detail and field errors).
 */
import { CliError, EXIT, exitCodeOfStatus } from './exit-codes.js';
import type { Settings } from './settings.js';

export interface Answer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

interface Problem {
  code?: string;
  detail?: string;
  title?: string;
  errors?: Array<{ field: string; message: string }>;
  currentVersion?: number;
}

export class ApiClient {
  constructor(
    private readonly settings: Settings,
    private readonly timeoutMs = 15_000,
  ) {}

  get url(): string {
    return this.settings.url;
  }

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
    let res: Response;
    try {
      res = await fetch(`${this.settings.url}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          'user-agent': 'lbctl',
          ...(this.settings.token !== undefined ? { authorization: `Bearer ${this.settings.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(EXIT.UNAVAILABLE, `cannot reach the control plane at ${this.settings.url}: ${why}`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page): shown as text below.
    }
    if (res.ok) return { status: res.status, headers: res.headers, body: parsed as T };
    const problem = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Problem;
    const what = problem.detail ?? problem.title ?? (typeof parsed === 'string' && parsed !== '' ? parsed.slice(0, 200) : res.statusText);
    const hint = res.status === 401 ? ' (set LB_TOKEN, --token-file or the config file)' : '';
    throw new CliError(
      exitCodeOfStatus(res.status, problem.code),
      `${method} ${path}: ${res.status}${problem.code ? ` ${problem.code}` : ''}: ${what}${hint}`,
      (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`),
    );
  }
}
