/**
 * @module GET /api/health: liveness + readiness detail, never behind auth. Always 200 while the process can answer:
 * a degraded daemon (Docker down, a bad project file) is still alive and must not be restarted by an orchestrator;
 * monitors read `status` ("ok" | "degraded") and the per-component detail.
 */
import { Router } from '@koa/router';
import type { HttpDeps } from '../ports.ts';

export function healthRoutes(deps: Pick<HttpDeps, 'health'>): Router {
  const router = new Router();
  router.get('/api/health', async (ctx) => {
    const report = await deps.health();
    ctx.set('Cache-Control', 'no-store');
    ctx.body = report;
  });
  return router;
}
