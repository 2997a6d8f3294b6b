/**
 * @module GET /containers/:id/logs: Docker logs of a container of a managed compose project. The reader decides
 * membership and answers null for anything else, so this route cannot be used to read arbitrary containers.
 * `?follow=1` streams the log (text/plain, chunked) as it is produced until the client leaves or the container stops;
 * at most SHIPARR_MAX_SSE_CLIENTS follows are open at once (one more is 503 with Retry-After).
 */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { BadRequestError, ServiceUnavailableError } from '../errors.ts';
import { queryBool, queryInt } from '../params.ts';
import type { HttpDeps } from '../ports.ts';

const CONTAINER_ID = /^[a-zA-Z0-9_.-]{1,128}$/;
/** Open follows at most, by default (the SSE client cap's default). */
const DEFAULT_MAX_FOLLOWS = 64;
/** Retry-After of a refused follow (seconds). */
const FOLLOW_RETRY_SECONDS = 3;

export function containerRoutes(deps: Pick<HttpDeps, 'containers' | 'limits' | 'signal'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  const follows = new Set<AbortController>();
  const maxFollows = deps.limits?.maxSseClients ?? DEFAULT_MAX_FOLLOWS;
  deps.signal?.addEventListener('abort', () => {
    for (const f of follows) f.abort();
  });

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
      if (!follow || deps.signal?.aborted)
        throw new ServiceUnavailableError('following container logs is not available', FOLLOW_RETRY_SECONDS);
      if (follows.size >= maxFollows)
        throw new ServiceUnavailableError(`too many log follows open (at most ${maxFollows})`, FOLLOW_RETRY_SECONDS);
      const ac = new AbortController();
      follows.add(ac);
      const done = () => {
        follows.delete(ac);
        ac.abort();
      };
      let stream;
      try {
        stream = await follow(id, since === undefined ? { tail } : { tail, since }, ac.signal);
      } catch (err) {
        done();
        throw err;
      }
      if (stream === null) {
        done();
        throw new NotFoundError(`container "${id}" not found in a managed project`);
      }
      ctx.req.setTimeout(0);
      ctx.set('Cache-Control', 'no-cache, no-transform');
      ctx.set('X-Accel-Buffering', 'no');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = stream;
      stream.on('close', done);
      ctx.res.on('close', () => {
        done();
        stream.destroy();
      });
      return;
    }
    const logs = await deps.containers.logs(id, since === undefined ? { tail } : { tail, since });
    if (logs === null) throw new NotFoundError(`container "${id}" not found in a managed project`);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = logs;
  });

  return router;
}
