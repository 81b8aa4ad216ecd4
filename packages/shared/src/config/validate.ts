/**
 * Validation of config documents at every edge: the REST API before a commit, the data plane
 * before applying a snapshot. Every problem is reported (not just the first), each with the field
 * at fault, and the input is never modified: defaults are filled into a copy.
 */
import { createSecureContext } from 'node:tls';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isValidMatchHost, parseHostPort } from './address.js';
import { CERTIFICATE_KEY_TYPES, parseCertificateChain } from './certificate-pem.js';
import { checkL4Listener, checkL4Routes, servedListeners } from './validate-l4.js';
import {
  DEFAULT_LISTENER,
  HASH_ON_ALGORITHMS,
  type Backend,
  type CertificateResource,
  type Config,
  type HeaderMatch,
  type HeaderRules,
  type Listener,
  type Pool,
  type QueryMatch,
  type RetryPolicy,
  type Route,
  type ValueMatch,
} from './model.js';
import { resourceKey, sectionsOf, type ResourceSections } from './resources.js';
import {
  HTTP_TOKEN_PATTERN,
  backendBodySchema,
  backendPatchSchema,
  backendSchema,
  certificateBodySchema,
  certificateSchema,
  configSchema,
  listenerSchema,
  poolSchema,
  registrationBodySchema,
  routeSchema,
} from './schema.js';

export interface FieldError {
  /** Dotted path of the field at fault, relative to the document validated: `backends[0].weight`. */
  field: string;
  message: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export interface ValidationOptions {
  /**
   * The document is what a client writes now (a REST body, a bootstrap file), not a stored
   * version: also refuse a health check's timeoutMs above its intervalMs. Versions stored before
   * that rule may hold one (an interval under 2 s got the 2 s default), so the control plane's
   * check of a whole merged config and the data plane's check of a snapshot leave it out: an
   * upgrade must neither NACK the running version nor block writes to other pools.
   */
  forWrite?: boolean;
  /**
   * A config validated before (with its defaults filled in). Resources of the input that are the
   * very same objects as this config's, under the same section and name, are taken as they are:
   * only the other resources are checked on their own, and the relations between resources (routes
   * naming pools, ambiguous matches) are checked across the whole result. This is how a change to
   * one pool of a 100,000-backend config is validated as a whole without re-reading every backend.
   * Only validateConfig reads it.
   */
  trusted?: Config;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });

/**
 * Each schema is compiled when first used, not on import: compiling all of them took a quarter of
 * the control plane's start (~270 ms of 1.1 s), and most processes use one or two of them.
 */
function lazyValidators<K extends string>(schemas: Record<K, object>): Readonly<Record<K, ValidateFunction>> {
  const out = {} as Record<K, ValidateFunction>;
  for (const name of Object.keys(schemas) as K[]) {
    let validate: ValidateFunction | undefined;
    Object.defineProperty(out, name, { enumerable: true, get: () => (validate ??= ajv.compile(schemas[name])) });
  }
  return out;
}

const compiled = lazyValidators({
  config: configSchema,
  pool: poolSchema,
  route: routeSchema,
  backend: backendSchema,
  backendBody: backendBodySchema,
  backendPatch: backendPatchSchema,
  registration: registrationBodySchema,
  listener: listenerSchema,
  certificate: certificateSchema,
  certificateBody: certificateBodySchema,
});

/** `/pools/web/backends/0/weight` → `pools.web.backends[0].weight`. */
export function pointerToField(pointer: string, prefix = ''): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

function joinField(prefix: string, field: string): string {
  if (prefix === '') return field;
  if (field === '' || field.startsWith('[')) return prefix + field;
  return `${prefix}.${field}`;
}

function describe(error: ErrorObject, prefix: string): FieldError {
  const base = pointerToField(error.instancePath, prefix);
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String((error.params as { additionalProperty: string }).additionalProperty);
      return { field: joinField(base, name), message: 'unknown field' };
    }
    case 'required': {
      const name = String((error.params as { missingProperty: string }).missingProperty);
      return { field: joinField(base, name), message: 'is required' };
    }
    case 'propertyNames':
      return {
        field: joinField(base, String((error.params as { propertyName: string }).propertyName)),
        message: 'is not a valid name: use [a-z0-9][a-z0-9-]{0,62}',
      };
    case 'pattern':
      if (String((error.params as { pattern: string }).pattern).startsWith('^[a-z0-9]'))
        return { field: base, message: 'is not a valid name: use [a-z0-9][a-z0-9-]{0,62}' };
      if ((error.params as { pattern: string }).pattern === HTTP_TOKEN_PATTERN)
        return { field: base, message: "must be an HTTP token: letters, digits and !#$%&'*+-.^_`|~" };
      return { field: base, message: `must match ${String((error.params as { pattern: string }).pattern)}` };
    case 'uniqueItems':
      return { field: base, message: 'must not list the same value twice' };
    case 'anyOf':
      return { field: base, message: 'must be a status code (100-599) or a range such as "200-399"' };
    case 'enum':
      return { field: base, message: `must be one of: ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
    default:
      return { field: base === '' ? '(body)' : base, message: error.message ?? 'is invalid' };
  }
}

function structural<T>(validate: ValidateFunction, input: unknown, prefix: string): Validation<T> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: [{ field: prefix === '' ? '(body)' : prefix, message: 'must be a JSON object' }] };
  }
  const copy = structuredClone(input) as T;
  if (validate(copy)) return { ok: true, value: copy };
  // A bad property name is reported twice: by the inner `pattern` (tagged with propertyName) and by
  // `propertyNames`; keep the latter, which names the property.
  // The branches of an anyOf each report their own failure; the anyOf error itself says it better.
  const errors = (validate.errors ?? []).filter((e) => (e.keyword === 'propertyNames' || e.propertyName === undefined) && !e.schemaPath.includes('/anyOf/'));
  return { ok: false, errors: dedupe(errors.map((e) => describe(e, prefix))) };
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.field}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function checkBackends(backends: Backend[], prefix: string, errors: FieldError[]): void {
  const ids = new Map<string, number>();
  const addresses = new Map<string, string>();
  backends.forEach((b, i) => {
    const at = `${prefix}[${i}]`;
    const parsed = parseHostPort(b.address);
    if (typeof parsed === 'string') errors.push({ field: `${at}.address`, message: parsed });
    const seenAt = ids.get(b.id);
    if (seenAt !== undefined) errors.push({ field: `${at}.id`, message: `duplicate backend id "${b.id}" (also at index ${seenAt})` });
    else ids.set(b.id, i);
    const key = b.address.toLowerCase();
    const owner = addresses.get(key);
    if (owner !== undefined && owner !== b.id) errors.push({ field: `${at}.address`, message: `address already used by backend "${owner}" in this pool` });
    else addresses.set(key, b.id);
  });
}

function checkPool(pool: Pool, prefix: string, errors: FieldError[], options: ValidationOptions): void {
  checkBackends(pool.backends, joinField(prefix, 'backends'), errors);
  checkAlgorithmOptions(pool, prefix, errors);
  checkRetry(pool.retry, joinField(prefix, 'retry'), errors);
  checkHealthTimeout(pool, prefix, errors, options);
  pool.healthCheck?.expectedStatuses.forEach((status, i) => {
    if (typeof status !== 'string') return;
    const [lo, hi] = status.split('-').map(Number) as [number, number];
    if (lo > hi)
      errors.push({
        field: joinField(prefix, `healthCheck.expectedStatuses[${i}]`),
        message: `range "${status}" is empty: the first status must not exceed the second`,
      });
  });
}

/** The default probe timeout: 2 s, or the interval when that is shorter. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 2000;

/** A probe must end before the next one is due: a longer timeout is refused, never clamped silently. */
function checkHealthTimeout(pool: Pool, prefix: string, errors: FieldError[], options: ValidationOptions): void {
  const check = pool.healthCheck;
  if (check === undefined) return;
  if (check.timeoutMs === undefined) check.timeoutMs = Math.min(DEFAULT_HEALTH_TIMEOUT_MS, check.intervalMs);
  else if (options.forWrite && check.timeoutMs > check.intervalMs)
    errors.push({ field: joinField(prefix, 'healthCheck.timeoutMs'), message: `must not exceed intervalMs (${check.intervalMs})` });
}

/** Per-algorithm settings: each block only on the algorithm that reads it, so a typo'd setup fails loudly. */
const ALGORITHM_OPTIONS = [
  ['hashOn', HASH_ON_ALGORITHMS],
  ['consistentHash', ['consistent_hash']],
  ['p2c', ['p2c']],
  ['leastResponseTime', ['least_response_time']],
  ['resourceBased', ['resource_based']],
] as const;

function checkAlgorithmOptions(pool: Pool, prefix: string, errors: FieldError[]): void {
  for (const [field, algorithms] of ALGORITHM_OPTIONS) {
    if (pool[field] !== undefined && !(algorithms as readonly string[]).includes(pool.algorithm)) {
      errors.push({ field: joinField(prefix, field), message: `is only used by algorithm ${algorithms.join(' or ')}, not ${pool.algorithm}` });
    }
  }
  const hashOn = pool.hashOn;
  if (hashOn !== undefined) {
    const needsName = hashOn.source === 'header' || hashOn.source === 'cookie' || hashOn.source === 'query';
    if (needsName && hashOn.name === undefined)
      errors.push({ field: joinField(prefix, 'hashOn.name'), message: `is required when source is ${hashOn.source}` });
    if (!needsName && hashOn.name !== undefined)
      errors.push({ field: joinField(prefix, 'hashOn.name'), message: `is not used when source is ${hashOn.source}` });
    if ((hashOn.source === 'header' || hashOn.source === 'cookie') && hashOn.name !== undefined && !new RegExp(HTTP_TOKEN_PATTERN).test(hashOn.name)) {
      errors.push({ field: joinField(prefix, 'hashOn.name'), message: "must be an HTTP token: letters, digits and !#$%&'*+-.^_`|~" });
    }
  }
  if (pool.sticky !== undefined && pool.sticky.sameSite === 'None' && !pool.sticky.secure) {
    errors.push({ field: joinField(prefix, 'sticky.secure'), message: 'must be true when sameSite is None (browsers drop the cookie otherwise)' });
  }
}

function checkRetry(retry: RetryPolicy | undefined, prefix: string, errors: FieldError[]): void {
  if (retry === undefined) return;
  if (retry.maxBackoffMs < retry.backoffMs)
    errors.push({ field: joinField(prefix, 'maxBackoffMs'), message: `must be at least backoffMs (${retry.backoffMs})` });
}

function checkRoute(route: Route, prefix: string, errors: FieldError[], pools?: Record<string, Pool>): void {
  checkRetry(route.retry, joinField(prefix, 'retry'), errors);
  const limit = route.rateLimit;
  if (limit !== undefined) {
    if (limit.key === 'header' && limit.header === undefined)
      errors.push({ field: joinField(prefix, 'rateLimit.header'), message: 'is required when key is header' });
    if (limit.key !== 'header' && limit.header !== undefined)
      errors.push({ field: joinField(prefix, 'rateLimit.header'), message: `is not used when key is ${limit.key}` });
    // The bucket must hold at least one request, or a key could never send anything.
    limit.burst ??= Math.max(1, Math.ceil(limit.requestsPerSecond));
  }
  const host = route.match.host;
  if (host !== undefined && !isValidMatchHost(host)) {
    errors.push({ field: joinField(prefix, 'match.host'), message: 'must be a host name, optionally starting with "*."' });
  }
  checkRouteConditions(route, prefix, errors);
  checkHeaderRules(route.requestHeaders, joinField(prefix, 'requestHeaders'), errors);
  checkHeaderRules(route.responseHeaders, joinField(prefix, 'responseHeaders'), errors);
  const redirect = route.redirect;
  if (redirect !== undefined) {
    if (route.pools.length > 0) errors.push({ field: joinField(prefix, 'pools'), message: 'a route that redirects has no pools' });
    if (route.rewrite !== undefined) errors.push({ field: joinField(prefix, 'rewrite'), message: 'a route that redirects forwards nothing to rewrite' });
    if (redirect.path !== undefined && redirect.pathPrefix !== undefined)
      errors.push({ field: joinField(prefix, 'redirect.pathPrefix'), message: 'give path or pathPrefix, not both' });
    if (redirect.host !== undefined && (redirect.host.startsWith('*.') || !isValidMatchHost(redirect.host)))
      errors.push({ field: joinField(prefix, 'redirect.host'), message: 'must be a host name' });
  } else if (route.pools.length === 0) errors.push({ field: joinField(prefix, 'pools'), message: 'must list at least one pool (or the route must redirect)' });
  const seen = new Set<string>();
  let total = 0;
  route.pools.forEach((p, i) => {
    const at = joinField(prefix, `pools[${i}].pool`);
    if (seen.has(p.pool)) errors.push({ field: at, message: `pool "${p.pool}" is listed twice` });
    seen.add(p.pool);
    if (pools && !Object.hasOwn(pools, p.pool)) errors.push({ field: at, message: `pool "${p.pool}" does not exist` });
    total += p.weight;
  });
  if (route.pools.length > 0 && total === 0) errors.push({ field: joinField(prefix, 'pools'), message: 'at least one pool needs a weight above 0' });
}

/** Exactly one of exact, prefix, regex, present; a regex that compiles; ignoreCase only where it means something. */
function checkValueMatch(m: ValueMatch, field: string, errors: FieldError[]): void {
  const kinds = ['exact', 'prefix', 'regex', 'present'].filter((k) => m[k as keyof ValueMatch] !== undefined);
  if (kinds.length !== 1) {
    errors.push({
      field,
      message: kinds.length === 0 ? 'needs one of exact, prefix, regex, present' : `give one of exact, prefix, regex, present, not ${kinds.join(' and ')}`,
    });
    return;
  }
  if (m.regex !== undefined) {
    try {
      new RegExp(m.regex);
    } catch (err) {
      errors.push({ field: `${field}.regex`, message: `does not compile: ${(err as Error).message}` });
    }
  }
  if (m.ignoreCase !== undefined && m.exact === undefined && m.prefix === undefined)
    errors.push({ field: `${field}.ignoreCase`, message: 'only applies to exact and prefix' });
}

function checkRouteConditions(route: Route, prefix: string, errors: FieldError[]): void {
  for (const [i, m] of (route.match.headers ?? []).entries()) checkValueMatch(m, joinField(prefix, `match.headers[${i}]`), errors);
  for (const [i, m] of (route.match.query ?? []).entries()) checkValueMatch(m, joinField(prefix, `match.query[${i}]`), errors);
}

/** Header names a route may not edit: framing, connection-level and Host, which the proxy owns. */
const PROTECTED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection', 'host']);

function checkHeaderRules(rules: HeaderRules | undefined, prefix: string, errors: FieldError[]): void {
  if (rules === undefined) return;
  const names = [...(rules.remove ?? []), ...Object.keys(rules.set ?? {}), ...Object.keys(rules.add ?? {})];
  for (const name of names) {
    if (PROTECTED_HEADERS.has(name.toLowerCase())) errors.push({ field: prefix, message: `"${name}" cannot be edited: the proxy sets it` });
  }
  for (const [name, value] of [...Object.entries(rules.set ?? {}), ...Object.entries(rules.add ?? {})]) {
    if (/[\r\n\0]/.test(value)) errors.push({ field: `${prefix}.${name}`, message: 'a value cannot hold CR, LF or NUL' });
  }
}

/** How many conditions a route has besides host and path: more specific routes are tried first. */
export function routeSpecificity(route: Route): number {
  return (route.match.methods === undefined ? 0 : 1) + (route.match.headers?.length ?? 0) + (route.match.query?.length ?? 0);
}

/** Listener references of a route, checked against the listeners of the whole config. */
function checkRouteListeners(route: Route, prefix: string, errors: FieldError[], listeners: Record<string, Listener>): void {
  route.listeners?.forEach((name, i) => {
    if (name !== DEFAULT_LISTENER && !Object.hasOwn(listeners, name))
      errors.push({ field: joinField(prefix, `listeners[${i}]`), message: `listener "${name}" does not exist ("${DEFAULT_LISTENER}" is the --listen one)` });
  });
  if (route.httpsRedirect !== undefined && route.listeners !== undefined) {
    const plain = route.listeners.some((name) => name === DEFAULT_LISTENER || listeners[name]?.protocol === 'http');
    if (!plain) errors.push({ field: joinField(prefix, 'httpsRedirect'), message: 'the route serves no plain-HTTP listener, so nothing would be redirected' });
  }
}

/** Names of TLS settings OpenSSL takes; asked once per distinct list (lists repeat across versions). */
const cipherVerdicts = new Map<string, string | undefined>();

function cipherProblem(ciphers: string): string | undefined {
  if (cipherVerdicts.has(ciphers)) return cipherVerdicts.get(ciphers);
  let problem: string | undefined;
  try {
    createSecureContext({ ciphers });
  } catch (err) {
    problem = `OpenSSL refuses it: ${(err as Error).message}`;
  }
  if (cipherVerdicts.size < 256) cipherVerdicts.set(ciphers, problem);
  return problem;
}

/** HTTP/2 on a listener: prior knowledge (h2c) is for plain HTTP; over TLS, ALPN says. */
function checkListenerHttp2(listener: Listener, prefix: string, errors: FieldError[]): void {
  if (listener.h2c === true && listener.protocol !== 'http')
    errors.push({ field: joinField(prefix, 'h2c'), message: 'is only used when protocol is http (over TLS, put "h2" in tls.alpn)' });
}

/** A pool's protocol and the TLS it needs (or must not have). */
function checkPoolProtocol(pool: Pool, prefix: string, errors: FieldError[]): void {
  const protocol = pool.protocol ?? 'http1';
  if (protocol === 'http2' && pool.tls === undefined)
    errors.push({ field: joinField(prefix, 'tls'), message: 'is required when protocol is http2 (HTTP/2 without TLS is "h2c")' });
  if (protocol === 'h2c' && pool.tls !== undefined)
    errors.push({ field: joinField(prefix, 'protocol'), message: 'h2c is HTTP/2 without TLS; with tls use "http2"' });
  if (protocol === 'http1' && pool.maxStreamsPerConnection !== undefined)
    errors.push({ field: joinField(prefix, 'maxStreamsPerConnection'), message: 'is only used when protocol is http2 or h2c' });
}

function checkListener(listener: Listener, prefix: string, errors: FieldError[], certificates?: Record<string, CertificateResource>): void {
  checkListenerHttp2(listener, prefix, errors);
  const tls = listener.tls;
  if (listener.protocol === 'https' && tls === undefined) errors.push({ field: joinField(prefix, 'tls'), message: 'is required when protocol is https' });
  if (listener.protocol !== 'https' && tls !== undefined) errors.push({ field: joinField(prefix, 'tls'), message: 'is only used when protocol is https' });
  checkL4Listener(listener, prefix, errors);
  if (tls === undefined) return;
  if (tls.defaultCertificate !== undefined && !tls.certificates.includes(tls.defaultCertificate))
    errors.push({ field: joinField(prefix, 'tls.defaultCertificate'), message: `must be one of tls.certificates (${tls.certificates.join(', ')})` });
  if (tls.ciphers !== undefined) {
    const problem = cipherProblem(tls.ciphers);
    if (problem !== undefined) errors.push({ field: joinField(prefix, 'tls.ciphers'), message: problem });
  }
  if (certificates === undefined) return;
  tls.certificates.forEach((name, i) => {
    if (!Object.hasOwn(certificates, name))
      errors.push({ field: joinField(prefix, `tls.certificates[${i}]`), message: `certificate "${name}" does not exist` });
  });
}

/**
 * A certificate resource: a PEM chain in order whose leaf has an RSA or EC key. Expiry is not a
 * rule here — a stored version must not turn invalid as time passes; the control plane checks it
 * when a certificate is written.
 */
function checkCertificate(resource: CertificateResource, prefix: string, errors: FieldError[]): void {
  const parsed = parseCertificateChain(resource.certificate);
  if (!parsed.ok) {
    errors.push({ field: joinField(prefix, 'certificate'), message: parsed.message });
    return;
  }
  const type = parsed.chain[0]!.publicKey.asymmetricKeyType;
  if (!(CERTIFICATE_KEY_TYPES as readonly (string | undefined)[]).includes(type))
    errors.push({ field: joinField(prefix, 'certificate'), message: `has a ${type ?? 'unknown'} key; use an RSA or ECDSA certificate` });
}

function checkPoolTls(pool: Pool, prefix: string, errors: FieldError[], certificates: Record<string, CertificateResource>): void {
  const tls = pool.tls;
  if (tls === undefined) return;
  for (const field of ['caCertificate', 'clientCertificate'] as const) {
    const name = tls[field];
    if (name !== undefined && !Object.hasOwn(certificates, name))
      errors.push({ field: joinField(prefix, `tls.${field}`), message: `certificate "${name}" does not exist` });
  }
}

/** A route's match as one comparable key: two routes with the same key would be ambiguous. */
export function matchKey(route: Route): string {
  const m = route.match;
  const conditions = (list: (HeaderMatch | QueryMatch)[] | undefined, lower: boolean) =>
    (list ?? []).map((c) => JSON.stringify([lower ? c.name.toLowerCase() : c.name, c.exact, c.prefix, c.regex, c.present, c.ignoreCase ?? false])).sort();
  return JSON.stringify([
    (m.host ?? '').toLowerCase(),
    m.pathPrefix ?? '/',
    [...(m.methods ?? [])].sort(),
    conditions(m.headers, true),
    conditions(m.query, false),
  ]);
}

function checkConfig(config: Config, errors: FieldError[], options: ValidationOptions): void {
  const trusted = options.trusted;
  // A resource the caller vouches for (unchanged since a validated version) skips its own checks;
  // references between resources are always checked, since what they point at may have changed.
  const isTrusted = (section: 'pools' | 'certificates', name: string, value: unknown): boolean => {
    const known = trusted?.[section] as Record<string, unknown> | undefined;
    return known !== undefined && Object.hasOwn(known, name) && known[name] === value;
  };
  const certificates = config.certificates ?? {};
  const listeners = config.listeners ?? {};
  for (const [name, resource] of Object.entries(certificates)) {
    if (!isTrusted('certificates', name, resource)) checkCertificate(resource, `certificates.${name}`, errors);
  }
  const ports = new Map<number, string>();
  for (const [name, listener] of Object.entries(listeners)) {
    if (name === DEFAULT_LISTENER)
      errors.push({ field: `listeners.${name}`, message: `"${DEFAULT_LISTENER}" names the data plane's --listen listener; pick another name` });
    checkListener(listener, `listeners.${name}`, errors, certificates);
    const other = ports.get(listener.port);
    if (other !== undefined) errors.push({ field: `listeners.${name}.port`, message: `port ${listener.port} is already listener "${other}"'s` });
    else ports.set(listener.port, name);
  }
  for (const [name, pool] of Object.entries(config.pools)) {
    if (!isTrusted('pools', name, pool)) {
      checkPool(pool, `pools.${name}`, errors, options);
      checkPoolProtocol(pool, `pools.${name}`, errors);
    }
    checkPoolTls(pool, `pools.${name}`, errors, certificates);
  }
  // Two routes with the same match are ambiguous where they serve the same listener; a route for
  // plain HTTP (a redirect, say) and one for HTTPS may share a match.
  const matches = new Map<string, Array<{ name: string; listeners: readonly string[] }>>();
  for (const [name, route] of Object.entries(config.routes)) {
    checkRoute(route, `routes.${name}`, errors, config.pools);
    checkRouteListeners(route, `routes.${name}`, errors, listeners);
    const key = matchKey(route);
    const same = matches.get(key) ?? [];
    const served = servedListeners(route, listeners);
    const other = same.find((o) => o.listeners.some((l) => served.includes(l)));
    if (other !== undefined) errors.push({ field: `routes.${name}.match`, message: `same match as route "${other.name}" on the same listener` });
    same.push({ name, listeners: served });
    matches.set(key, same);
  }
  checkL4Routes(config, errors);
}

function finish<T>(result: Validation<T>, check: (value: T, errors: FieldError[]) => void): Validation<T> {
  if (!result.ok) return result;
  const errors: FieldError[] = [];
  check(result.value, errors);
  return errors.length === 0 ? result : { ok: false, errors };
}

/** The whole config: structure, then every cross-reference (see ValidationOptions.trusted). */
export function validateConfig(input: unknown, prefix = '', options: ValidationOptions = {}): Validation<Config> {
  if (options.trusted === undefined) return finish(structural<Config>(compiled.config, input, prefix), (c, errors) => checkConfig(c, errors, options));
  const trusted = sectionsOf(options.trusted);
  const { sparse, kept } = withoutTrusted(input, trusted);
  const checked = structural<Config>(compiled.config, sparse, prefix);
  if (!checked.ok) return checked;
  return finish({ ok: true, value: restoreTrusted(input as ResourceSections, sectionsOf(checked.value), kept) as unknown as Config }, (c, errors) =>
    checkConfig(c, errors, options),
  );
}

/** The input without its trusted resources (those go through no schema again), and which were left out. */
function withoutTrusted(input: unknown, trusted: ResourceSections): { sparse: unknown; kept: Set<string> } {
  const kept = new Set<string>();
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return { sparse: input, kept };
  const sparse: Record<string, unknown> = {};
  for (const [section, resources] of Object.entries(input)) {
    const known = trusted[section];
    if (known === undefined || resources === null || typeof resources !== 'object' || Array.isArray(resources)) {
      sparse[section] = resources;
      continue;
    }
    const rest: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(resources)) {
      if (Object.hasOwn(known, name) && known[name] === value) kept.add(resourceKey(section, name));
      else rest[name] = value;
    }
    sparse[section] = rest;
  }
  return { sparse, kept };
}

/** The validated sparse config with the trusted resources put back, in the input's order. */
function restoreTrusted(input: ResourceSections, checked: ResourceSections, kept: ReadonlySet<string>): ResourceSections {
  const out: ResourceSections = {};
  for (const [section, resources] of Object.entries(checked)) {
    const merged: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(input[section] ?? {})) merged[name] = kept.has(resourceKey(section, name)) ? value : resources[name];
    out[section] = merged;
  }
  return out;
}

/** One pool on its own (PUT /v1/pools/{pool}); cross-references are checked when it is merged. */
export function validatePool(input: unknown, prefix = '', options: ValidationOptions = {}): Validation<Pool> {
  return finish(structural<Pool>(compiled.pool, input, prefix), (p, errors) => {
    checkPool(p, prefix, errors, options);
    checkPoolProtocol(p, prefix, errors);
  });
}

/** One route on its own; pass the pools it may name to check its references too. */
export function validateRoute(input: unknown, pools?: Record<string, Pool>, prefix = ''): Validation<Route> {
  return finish(structural<Route>(compiled.route, input, prefix), (r, errors) => checkRoute(r, prefix, errors, pools));
}

/** One listener on its own (PUT /v1/listeners/{name}); certificate references are checked when it is merged. */
export function validateListener(input: unknown, prefix = ''): Validation<Listener> {
  return finish(structural<Listener>(compiled.listener, input, prefix), (l, errors) => checkListener(l, prefix, errors));
}

/** A certificate resource on its own, as stored in the config. */
export function validateCertificate(input: unknown, prefix = ''): Validation<CertificateResource> {
  return finish(structural<CertificateResource>(compiled.certificate, input, prefix), (c, errors) => checkCertificate(c, prefix, errors));
}

/** PUT /v1/certificates/{name}: the resource and, separately, its private key (PEM), if any. */
export function validateCertificateBody(input: unknown): Validation<{ resource: CertificateResource; privateKey?: string }> {
  const result = structural<CertificateResource & { privateKey?: string }>(compiled.certificateBody, input, '');
  if (!result.ok) return result;
  const { privateKey, ...resource } = result.value;
  const errors: FieldError[] = [];
  checkCertificate(resource, '', errors);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { resource, ...(privateKey !== undefined ? { privateKey } : {}) } };
}

/** A backend document; `idFromPath` allows the id to be left out of the body (PUT .../backends/{id}). */
export function validateBackend(input: unknown, idFromPath?: string): Validation<Backend> {
  const result = structural<Backend>(idFromPath === undefined ? compiled.backend : compiled.backendBody, input, '');
  return finish(result, (b, errors) => {
    if (idFromPath !== undefined) {
      if (b.id !== undefined && b.id !== idFromPath) errors.push({ field: 'id', message: `does not match the id in the path ("${idFromPath}")` });
      b.id = idFromPath;
    }
    const parsed = parseHostPort(b.address);
    if (typeof parsed === 'string') errors.push({ field: 'address', message: parsed });
  });
}

/** A partial backend (PATCH): only the fields present are checked and returned. */
export function validateBackendPatch(input: unknown): Validation<Partial<Backend>> {
  return finish(structural<Partial<Backend>>(compiled.backendPatch, input, ''), (b, errors) => {
    if (b.address !== undefined) {
      const parsed = parseHostPort(b.address);
      if (typeof parsed === 'string') errors.push({ field: 'address', message: parsed });
    }
  });
}

/** A self-registered backend (PUT .../backends/{id} with `ttlSeconds`): the backend and its lease TTL. */
export function validateBackendRegistration(input: unknown, idFromPath: string): Validation<{ backend: Backend; ttlSeconds: number }> {
  const result = structural<Backend & { ttlSeconds: number }>(compiled.registration, input, '');
  if (!result.ok) return result;
  const { ttlSeconds, ...rest } = result.value;
  const errors: FieldError[] = [];
  if (rest.id !== undefined && rest.id !== idFromPath) errors.push({ field: 'id', message: `does not match the id in the path ("${idFromPath}")` });
  const parsed = parseHostPort(rest.address);
  if (typeof parsed === 'string') errors.push({ field: 'address', message: parsed });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { backend: { ...rest, id: idFromPath }, ttlSeconds } };
}

/** Does `status` count as success for a health check's expectedStatuses (numbers and "200-399" ranges)? */
export function statusExpected(expected: ReadonlyArray<number | string>, status: number): boolean {
  for (const e of expected) {
    if (typeof e === 'number') {
      if (e === status) return true;
    } else {
      const dash = e.indexOf('-');
      if (status >= Number(e.slice(0, dash)) && status <= Number(e.slice(dash + 1))) return true;
    }
  }
  return false;
}
