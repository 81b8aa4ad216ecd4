/**
 * The rules of Layer 4 listeners (`tcp`, `tls-passthrough`) and of the routes and pools that serve
 * them. Connections reach pools through routes limited to L4 listeners (`route.listeners`), so
 * pool weights, the pool's balancer and the ambiguity check work as for HTTP; what only HTTP can
 * use is refused on them with the field at fault, never ignored.
 */
import { parseCidr } from './cidr.js';
import { DEFAULT_LISTENER, isL4Protocol, type Config, type Listener, type Pool, type Route } from './model.js';

interface FieldError {
  field: string;
  message: string;
}

const L4_LISTENER_FIELDS = ['idleTimeoutMs', 'maxConnections', 'helloTimeoutMs', 'acceptProxyProtocol'] as const;

/** The L4 fields of one listener: only on L4 listeners, trusted sources that parse. */
export function checkL4Listener(listener: Listener, prefix: string, errors: FieldError[]): void {
  const at = (field: string) => (prefix === '' ? field : `${prefix}.${field}`);
  if (!isL4Protocol(listener.protocol)) {
    for (const field of L4_LISTENER_FIELDS)
      if (listener[field] !== undefined) errors.push({ field: at(field), message: 'is only used by tcp and tls-passthrough listeners' });
    return;
  }
  if (listener.helloTimeoutMs !== undefined && listener.protocol === 'tcp' && listener.acceptProxyProtocol === undefined)
    errors.push({ field: at('helloTimeoutMs'), message: 'is only used by tls-passthrough listeners or with acceptProxyProtocol' });
  listener.acceptProxyProtocol?.trustedSources.forEach((source, i) => {
    const parsed = parseCidr(source);
    if (typeof parsed === 'string') errors.push({ field: at(`acceptProxyProtocol.trustedSources[${i}]`), message: `${parsed}; use a CIDR such as 10.0.0.0/8` });
  });
}

/** The listeners a route serves: those it names, or (none named) every HTTP listener — never an L4 one. */
export function servedListeners(route: Route, listeners: Record<string, Listener>): readonly string[] {
  if (route.listeners !== undefined) return route.listeners;
  return [DEFAULT_LISTENER, ...Object.keys(listeners).filter((name) => !isL4Protocol(listeners[name]!.protocol))];
}

/** Route fields that only mean something to HTTP requests. */
const HTTP_ROUTE_FIELDS = [
  'rateLimit',
  'timeouts',
  'websocket',
  'requestHeaders',
  'responseHeaders',
  'rewrite',
  'redirect',
  'httpsRedirect',
  'hsts',
  'forwarded',
] as const;
const HTTP_MATCH_FIELDS = ['methods', 'headers', 'query'] as const;

const HTTP_ONLY = 'is HTTP-only: routes of tcp and tls-passthrough listeners do not use it';

/** Routes of L4 listeners and their pools; returns nothing, reports into `errors`. */
export function checkL4Routes(config: Config, errors: FieldError[]): void {
  const listeners = config.listeners ?? {};
  const isL4 = (name: string) => listeners[name] !== undefined && isL4Protocol(listeners[name].protocol);
  const l4Pools = new Map<string, string>();
  const httpPools = new Map<string, string>();
  const l4Routes: Array<[string, Route]> = [];
  for (const [name, route] of Object.entries(config.routes)) {
    const prefix = `routes.${name}`;
    const named = route.listeners ?? [];
    if (!named.some(isL4)) {
      for (const p of route.pools) if (!httpPools.has(p.pool)) httpPools.set(p.pool, name);
      continue;
    }
    l4Routes.push([name, route]);
    named.forEach((listener, i) => {
      if (!isL4(listener))
        errors.push({
          field: `${prefix}.listeners[${i}]`,
          message: `a route serves tcp and tls-passthrough listeners or HTTP ones, not both: "${listener}" is HTTP`,
        });
    });
    for (const field of HTTP_ROUTE_FIELDS) if (route[field] !== undefined) errors.push({ field: `${prefix}.${field}`, message: HTTP_ONLY });
    for (const field of HTTP_MATCH_FIELDS) if (route.match[field] !== undefined) errors.push({ field: `${prefix}.match.${field}`, message: HTTP_ONLY });
    if (route.match.pathPrefix !== undefined && route.match.pathPrefix !== '/') errors.push({ field: `${prefix}.match.pathPrefix`, message: HTTP_ONLY });
    if (route.match.host !== undefined) {
      const tcp = named.find((l) => listeners[l]?.protocol === 'tcp');
      if (tcp !== undefined)
        errors.push({
          field: `${prefix}.match.host`,
          message: `listener "${tcp}" is tcp: there is no name to match (tls-passthrough listeners match the SNI)`,
        });
    }
    for (const p of route.pools) if (!l4Pools.has(p.pool)) l4Pools.set(p.pool, name);
  }
  for (const [name, route] of l4Routes) {
    route.pools.forEach((p, i) => {
      const http = httpPools.get(p.pool);
      if (http !== undefined)
        errors.push({
          field: `routes.${name}.pools[${i}].pool`,
          message: `pool "${p.pool}" also serves HTTP route "${http}": give L4 routes pools of their own`,
        });
    });
  }
  for (const [name, pool] of Object.entries(config.pools)) {
    const route = l4Pools.get(name);
    if (route !== undefined) checkL4Pool(pool, `pools.${name}`, route, errors);
    else if (pool.proxyProtocol !== undefined && httpPools.has(name))
      errors.push({
        field: `pools.${name}.proxyProtocol`,
        message: `is only sent to backends of tcp and tls-passthrough routes; HTTP route "${httpPools.get(name)}" uses this pool`,
      });
  }
}

/** A pool an L4 route sends to: no field that needs HTTP requests or responses. */
function checkL4Pool(pool: Pool, prefix: string, route: string, errors: FieldError[]): void {
  const why = `is HTTP-only, and L4 route "${route}" uses this pool`;
  if (pool.sticky !== undefined) errors.push({ field: `${prefix}.sticky`, message: why });
  // HTTP/2 to backends is a way of carrying HTTP requests; an L4 pool carries bytes.
  if (pool.protocol !== undefined && pool.protocol !== 'http1') errors.push({ field: `${prefix}.protocol`, message: why });
  if (pool.maxStreamsPerConnection !== undefined) errors.push({ field: `${prefix}.maxStreamsPerConnection`, message: why });
  if (pool.tls !== undefined) errors.push({ field: `${prefix}.tls`, message: `${why} (tls-passthrough carries the client's TLS as it is)` });
  if (pool.algorithm === 'least_response_time' || pool.algorithm === 'resource_based')
    errors.push({ field: `${prefix}.algorithm`, message: `${pool.algorithm} learns from HTTP responses, and L4 route "${route}" uses this pool` });
  if (pool.circuitBreaker?.errorRate !== undefined)
    errors.push({
      field: `${prefix}.circuitBreaker.errorRate`,
      message: `${why}: outlierDetection ejects backends of L4 pools on connect failures and resets`,
    });
  if (pool.hashOn !== undefined && pool.hashOn.source !== 'ip')
    errors.push({
      field: `${prefix}.hashOn.source`,
      message: `must be ip: L4 route "${route}" uses this pool and its connections have only an address to hash`,
    });
}
