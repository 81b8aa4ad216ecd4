/**
 * Which methods each path answers, collected as routes are registered, so that a wrong method on
 * a path that exists gets 405 with `Allow` instead of 404. Must be installed before the routes.
 */
import type { FastifyInstance } from 'fastify';

interface Entry {
  pattern: RegExp;
  methods: Set<string>;
}

/** One registered route; `hidden` ones are left out of the OpenAPI document (swagger-ui's own pages). */
export interface RouteInfo {
  method: string;
  url: string;
  hidden: boolean;
}

function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => {
      if (segment.startsWith(':')) return '[^/]+';
      if (segment === '*') return '.*';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}$`);
}

export class RouteTable {
  private readonly entries = new Map<string, Entry>();
  private readonly routes: RouteInfo[] = [];

  install(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const hidden = (route.schema as { hide?: boolean } | undefined)?.hide === true;
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
        this.add(method, route.url);
        this.routes.push({ method: method.toUpperCase(), url: route.url, hidden });
      }
    });
  }

  /** Every route registered so far. */
  list(): RouteInfo[] {
    return [...this.routes];
  }

  add(method: string, url: string): void {
    let entry = this.entries.get(url);
    if (!entry) {
      entry = { pattern: patternOf(url), methods: new Set() };
      this.entries.set(url, entry);
    }
    entry.methods.add(method.toUpperCase());
  }

  /** The methods some route answers on `path` (without the query), sorted; empty when no route matches it. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const entry of this.entries.values()) if (entry.pattern.test(path)) for (const m of entry.methods) methods.add(m);
    return [...methods].sort();
  }
}
