/** Small HTTP helpers for tests: JSON calls to the REST API and plain requests through a data plane. */
import { request } from 'undici';
import { TEST_ADMIN_TOKEN } from './auth.js';

export interface JsonResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/**
 * One JSON call to the REST API, as the test admin (TEST_ADMIN_TOKEN) unless `headers` has its
 * own `authorization`; an empty one sends none. See apiAs() to call as another token.
 */
export async function api<T = any>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
  const own = Object.keys(headers).find((h) => h.toLowerCase() === 'authorization');
  const auth = own === undefined ? { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } : {};
  const sent = Object.fromEntries(Object.entries({ ...auth, ...headers }).filter(([name, value]) => !(name.toLowerCase() === 'authorization' && value === '')));
  const res = await request(url, {
    method: method as 'GET',
    headers: body === undefined ? sent : { 'content-type': 'application/json', ...sent },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text so the assertion shows it
  }
  return { status: res.statusCode, headers: res.headers, body: parsed as T };
}

/** api() as `token` (null: without any token). */
export function apiAs<T = any>(
  token: string | null,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  return api<T>(method, url, body, { ...headers, authorization: token === null ? '' : `Bearer ${token}` });
}

export interface TextResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request through a proxy; never throws on HTTP status, only on transport failure. */
export async function get(url: string, headers: Record<string, string> = {}): Promise<TextResponse> {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** Sends `count` GETs one after another and counts which backend answered (by X-Backend header). */
export async function distribution(url: string, count: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const res = await get(url, headers);
    const key = res.status === 200 ? String(res.headers['x-backend']) : `status-${res.status}`;
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}
