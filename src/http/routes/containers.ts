/**
 * @module GET /containers/:id/logs: Docker logs of a container of a managed compose project. The reader decides
 * membership and answers null for anything else, so this route cannot be used to read arbitrary containers.
 */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { BadRequestError } from '../errors.ts';
import { queryInt } from '../params.ts';
import type { HttpDeps } from '../ports.ts';

const CONTAINER_ID = /^[a-zA-Z0-9_.-]{1,128}$/;

export function containerRoutes(deps: Pick<HttpDeps, 'containers'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);

  router.get('/containers/:id/logs', async (ctx) => {
    const id = ctx.params['id'];
    if (id === undefined || !CONTAINER_ID.test(id) || id === '.' || id === '..') {
      throw new BadRequestError(
        'container id must be 1-128 characters of letters, digits, "_", "." or "-"',
        'INVALID_ID',
      );
    }
    const tail = queryInt(ctx, 'tail', 1, 5000, 100);
    const since = queryInt(ctx, 'since', 0, 253402300799);
    const logs = await deps.containers.logs(id, since === undefined ? { tail } : { tail, since });
    if (logs === null) throw new NotFoundError(`container "${id}" not found in a managed project`);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = logs;
  });

  return router;
}
