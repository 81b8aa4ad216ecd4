/**
 * The PickContext the forwarder hands to balancers: a view over the request that reads nothing
 * until asked. One instance is reused for every request (reset() is three field writes), so pools
 * whose algorithm ignores the request — round robin, least connections… — pay nothing for it.
 */
import type { RouteRequest } from '../routing/route-conditions.js';
import type { PickContext } from './balancer.js';

/** ASCII case-insensitive `a === lower` where `lower` is already lower case. */
function equalsLower(a: string, lower: string): boolean {
  const len = lower.length;
  if (a.length !== len) return false;
  for (let i = 0; i < len; i++) {
    let c = a.charCodeAt(i);
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The value of `name` in one Cookie header (`a=1; b="2"`), or undefined. */
export function findCookie(header: string, name: string): string | undefined {
  const n = name.length;
  let i = 0;
  const len = header.length;
  while (i < len) {
    while (i < len && (header.charCodeAt(i) === 32 || header.charCodeAt(i) === 9)) i++;
    let end = header.indexOf(';', i);
    if (end < 0) end = len;
    if (header.charCodeAt(i + n) === 61 /* = */ && header.startsWith(name, i)) {
      let start = i + n + 1;
      let stop = end;
      while (stop > start && header.charCodeAt(stop - 1) === 32) stop--;
      if (stop - start >= 2 && header.charCodeAt(start) === 34 && header.charCodeAt(stop - 1) === 34) {
        start++;
        stop--;
      }
      return header.slice(start, stop);
    }
    i = end + 1;
  }
  return undefined;
}

function decode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** The value of query parameter `name` in `url` (`/p?a=1&b=2`), or undefined. */
export function findQuery(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const n = name.length;
  let i = q + 1;
  const len = url.length;
  while (i < len) {
    let end = url.indexOf('&', i);
    if (end < 0) end = len;
    if (url.startsWith(name, i) && (i + n === end || url.charCodeAt(i + n) === 61)) return i + n === end ? '' : decode(url.slice(i + n + 1, end));
    i = end + 1;
  }
  return undefined;
}

export class RequestPickContext implements PickContext, RouteRequest {
  private rawHeaders: readonly string[] = [];
  private url = '/';
  /** The request's method, for routes that match on it. */
  method = 'GET';
  private socket: { readonly remoteAddress?: string | undefined } | undefined = undefined;
  /** Set by pin(); the forwarder adds it to the response. */
  setCookie: string | undefined = undefined;

  /** Points the context at a new request; `rawHeaders` is node's name/value list. */
  reset(rawHeaders: readonly string[], url: string, socket: { readonly remoteAddress?: string | undefined } | undefined, method = 'GET'): void {
    this.rawHeaders = rawHeaders;
    this.url = url;
    this.socket = socket;
    this.method = method;
    this.setCookie = undefined;
  }

  clientIp(): string | undefined {
    return this.socket?.remoteAddress;
  }

  header(lowerName: string): string | undefined {
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (equalsLower(raw[i]!, lowerName)) return raw[i + 1];
    return undefined;
  }

  headerList(lowerName: string): string | undefined {
    const raw = this.rawHeaders;
    let joined: string | undefined;
    for (let i = 0; i < raw.length; i += 2) if (equalsLower(raw[i]!, lowerName)) joined = joined === undefined ? raw[i + 1] : `${joined}, ${raw[i + 1]}`;
    return joined;
  }

  cookie(name: string): string | undefined {
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (!equalsLower(raw[i]!, 'cookie')) continue;
      const v = findCookie(raw[i + 1]!, name);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  path(): string {
    const q = this.url.indexOf('?');
    return q < 0 ? this.url : this.url.slice(0, q);
  }

  query(name: string): string | undefined {
    return findQuery(this.url, name);
  }

  pin(setCookie: string): void {
    this.setCookie = setCookie;
  }
}
