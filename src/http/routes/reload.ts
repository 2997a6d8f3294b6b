/** @module POST /api/reload: re-read the project files now (like SIGHUP); answers the diff and any file errors. */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { HttpDeps } from '../ports.ts';

export function reloadRoutes(deps: Pick<HttpDeps, 'supervisor'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  router.post('/api/reload', async (ctx) => {
    ctx.body = await deps.supervisor.reload();
  });
  return router;
}
