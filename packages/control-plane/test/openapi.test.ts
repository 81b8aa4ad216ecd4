// The OpenAPI document must describe every route the app serves: a route added without making it
// into the document fails here, as does one that does not say who may call it.
import { describe, expect, it } from 'vitest';
import { testApp } from './helpers.js';

interface Operation {
  description?: string;
  security?: unknown[];
}

describe('the OpenAPI document', () => {
  it('has every route with its method and required role (HEAD and the pages of /docs aside)', async () => {
    const { app } = await testApp();
    await app.ready();
    const doc = app.swagger() as { paths: Record<string, Record<string, Operation>> };
    const routes = app.routeTable.list().filter((r) => !r.hidden && r.method !== 'HEAD');
    expect(routes.length).toBeGreaterThanOrEqual(30);
    for (const route of routes) {
      const op = doc.paths[route.url.replace(/:([A-Za-z]+)/g, '{$1}')]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url} is missing from /openapi.json`).toBeDefined();
      expect(op?.description, `${route.method} ${route.url} does not say who may call it`).toMatch(
        /No token needed\.|Needs a token with role (viewer|operator|admin) or above\./,
      );
    }
    // Public routes need no token in the document either.
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
    expect(doc.paths['/v1/config']?.put?.security).toBeUndefined();
  });

  it('is served at /openapi.json and browsable at /docs without a token', async () => {
    const { app } = await testApp();
    const json = await app.inject({ method: 'GET', url: '/openapi.json', headers: { authorization: '' } });
    expect(json.statusCode).toBe(200);
    expect(json.json()).toMatchObject({ openapi: '3.0.3', info: { title: 'lb control plane' } });
    const docs = await app.inject({ method: 'GET', url: '/docs/', headers: { authorization: '' } });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toMatch(/text\/html/);
  });
});
