/** @module GET /metrics: Prometheus text exposition from the prom-client registry (behind auth like the API). */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { Registry } from 'prom-client';

export function metricsRoutes(registry: Registry, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  router.get('/metrics', async (ctx) => {
    const text = await registry.metrics();
    ctx.set('Cache-Control', 'no-store');
    ctx.type = registry.contentType;
    ctx.body = text;
  });
  return router;
}
