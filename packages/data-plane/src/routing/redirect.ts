/**
 * The Location of a route's redirect: the request's URL with the parts the route names replaced —
 * scheme, host, port, the whole path or just the prefix the route matched — and the query kept
 * unless the route strips it.
 */
import type { Redirect } from '@lb/shared';

/** `host` is the request's Host header (with its port, if any); `url` its target (`/path?query`). */
export function redirectLocation(redirect: Redirect, matchedPrefix: string, host: string | undefined, url: string): string {
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 || redirect.stripQuery ? '' : url.slice(q);
  if (redirect.path !== undefined) path = redirect.path;
  else if (redirect.pathPrefix !== undefined) path = redirect.pathPrefix + path.slice(matchedPrefix.length);
  let authority = host ?? '';
  if (redirect.host !== undefined || redirect.port !== undefined) {
    const name = redirect.host ?? hostName(authority);
    authority = redirect.port === undefined ? name : `${name}:${redirect.port}`;
  }
  return `${redirect.scheme ?? 'http'}://${authority}${path}${query}`;
}

/** `a.example:8080` → `a.example`; `[::1]:80` → `[::1]`. */
function hostName(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.indexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}
