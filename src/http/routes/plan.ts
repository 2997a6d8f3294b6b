/**
 * @module GET /api/repositories/:id/plan[?commit=sha]: what deploying a commit (default: the remote head) would change,
 * per service, computed in a scratch directory (the live checkout and the running stack are never touched).
 * Answers `{commit, services: [{service, action, reasons}], noop}`; 404 unknown repository, 400 bad sha,
 * 409 commit not found / compose or secrets problem, 502 git remote or Docker engine failure.
 */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { BadRequestError } from '../errors.ts';
import { parseRepoRef } from '../params.ts';
import type { HttpDeps } from '../ports.ts';

const COMMIT = /^[0-9a-f]{7,40}$/i;

export function planRoutes(deps: Pick<HttpDeps, 'supervisor' | 'plans'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  router.get('/api/repositories/:id/plan', async (ctx) => {
    const ref = parseRepoRef(ctx.params['id']);
    const repo = deps.supervisor.get(ref);
    if (!repo) throw new NotFoundError(`repository ${typeof ref === 'number' ? ref : `"${ref}"`} not found`);
    const raw = ctx.query['commit'];
    if (Array.isArray(raw)) throw new BadRequestError('commit must be given once', 'INVALID_COMMIT');
    if (raw !== undefined && !COMMIT.test(raw))
      throw new BadRequestError('commit must be a 7 to 40 character hex sha', 'INVALID_COMMIT');
    if (!deps.plans) {
      ctx.status = 503;
      ctx.body = { error: { code: 'PLAN_UNAVAILABLE', message: 'plans are not available in this process' } };
      return;
    }
    const r = await deps.plans.plan(repo.key, raw === undefined ? {} : { commit: raw.toLowerCase() });
    if (r.ok) {
      ctx.body = r.plan;
      return;
    }
    ctx.status = r.status;
    ctx.body = { error: { code: r.code, message: r.message } };
  });
  return router;
}
