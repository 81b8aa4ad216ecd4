/**
 * Which Host values the proxy routes on and forwards (RFC 9110 §7.2, RFC 3986 §3.2.2): a
 * registered name or IPv4 address — letters, digits, `-`, `.` and `_` — or an IPv6 literal in
 * brackets, then an optional `:port`. Everything else gets 400: userinfo (`x@y`) would be routed
 * on one name and read as another by a backend, and commas, spaces, slashes or backslashes are
 * what cache-poisoning and host-confusion payloads are made of. nginx refuses the same values.
 */

function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 /* - */ || c === 46 /* . */ || c === 95 /* _ */;
}

function isHexOrColon(c: number): boolean {
  return (c >= 48 && c <= 58) /* 0-9 : */ || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) || c === 46 /* . (embedded IPv4) */;
}

/** `:` then 1–5 digits from `at` to the end, or nothing at all. */
function validPort(value: string, at: number): boolean {
  if (at === value.length) return true;
  if (value.charCodeAt(at) !== 58 /* : */) return false;
  const digits = value.length - at - 1;
  if (digits < 1 || digits > 5) return false;
  for (let i = at + 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return Number(value.slice(at + 1)) <= 65_535;
}

export function isValidHostHeader(value: string): boolean {
  const n = value.length;
  if (n === 0 || n > 255 + 6) return false;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf(']');
    if (close < 3) return false;
    for (let i = 1; i < close; i++) if (!isHexOrColon(value.charCodeAt(i))) return false;
    return validPort(value, close + 1);
  }
  let i = 0;
  while (i < n && isNameChar(value.charCodeAt(i))) i++;
  if (i === 0) return false;
  return validPort(value, i);
}
