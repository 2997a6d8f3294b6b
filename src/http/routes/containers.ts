/**
 * @module GET /containers/:id/logs: Docker logs of a container of a managed compose project. The reader decides
 * membership and answers null for anything else, so this route cannot be used to read arbitrary containers.
 * `?follow=1` streams the log (text/plain, chunked) as it is produced until the client leaves or the container stops;
 * at most SHIPARR_MAX_SSE_CLIENTS follows are open at once (one more is 503 with Retry-After).
 */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { BadRequestError } from '../errors.ts';
import { followLogs } from '../log-follow.ts';
import { queryBool, queryInt } from '../params.ts';
import type { HttpDeps } from '../ports.ts';

const CONTAINER_ID = /^[a-zA-Z0-9_.-]{1,128}$/;

export function containerRoutes(deps: Pick<HttpDeps, 'containers' | 'limits' | 'signal'>, auth: Middleware): Router {
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
    if (queryBool(ctx, 'follow')) {
      const follow = deps.containers.follow?.bind(deps.containers);
      const opts = since === undefined ? { tail } : { tail, since };
      return followLogs(
        ctx,
        deps,
        'container logs',
        follow && ((signal) => follow(id, opts, signal)),
        () => new NotFoundError(`container "${id}" not found in a managed project`),
      );
    }
    const logs = await deps.containers.logs(id, since === undefined ? { tail } : { tail, since });
    if (logs === null) throw new NotFoundError(`container "${id}" not found in a managed project`);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = logs;
  });

  return router;
}
