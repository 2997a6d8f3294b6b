/** @module GET /api/deployments/:id and its captured logs (plain text). */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { maskSecrets } from '../../lib/redact.ts';
import { parseId } from '../params.ts';
import type { HttpDeps } from '../ports.ts';
import { publicDeployment } from '../present.ts';

export function deploymentRoutes(deps: Pick<HttpDeps, 'history'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);

  router.get('/api/deployments/:id', (ctx) => {
    const id = parseId(ctx.params['id'], 'deployment id');
    const d = deps.history.getDeployment(id);
    if (!d) throw new NotFoundError(`deployment ${id} not found`);
    ctx.body = publicDeployment(d);
  });

  router.get('/api/deployments/:id/logs', (ctx) => {
    const id = parseId(ctx.params['id'], 'deployment id');
    if (!deps.history.getDeployment(id)) throw new NotFoundError(`deployment ${id} not found`);
    const logs = deps.history.getDeploymentLogs(id) ?? '';
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = maskSecrets(logs);
  });

  return router;
}
