/**
 * @module GET /api/health: liveness + readiness, never refused for missing credentials. Always 200 while the process
 * can answer: a degraded daemon (Docker down, a bad project file) is still alive and must not be restarted by an
 * orchestrator; monitors read `status` ("ok" | "degraded") and the per-component `ok` booleans.
 *
 * Anyone gets `{ status, version, db: { ok }, docker: { ok }, config: { ok } }`. The details (error messages, the
 * config issues with their file paths, uptime) go only to a caller the API's own auth middleware accepts: it is run
 * here with a no-op `next`. A caller without credentials gets the short report instead of a 401; wrong credentials
 * get the usual 401 (and count as a failed authentication). With auth off, the middleware lets everyone through, so
 * every caller it admits sees the details.
 */
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { HealthReport, HttpDeps } from '../ports.ts';

/** What an unauthenticated caller sees: the overall status, the version and one boolean per component. */
interface PublicHealth {
  status: HealthReport['status'];
  version: string;
  db: { ok: boolean };
  docker: { ok: boolean };
  config: { ok: boolean };
}

function publicHealth(r: HealthReport): PublicHealth {
  return {
    status: r.status,
    version: r.version,
    db: { ok: r.db.ok },
    docker: { ok: r.docker.ok },
    config: { ok: r.config.ok },
  };
}

/**
 * true when `auth` admits the request. A request without credentials that `auth` refuses gets false (the short
 * report); one whose credentials are refused gets the middleware's own 401, so wrong passwords are answered (and
 * counted by the failure limiter) here exactly as on the rest of the API.
 */
async function admitted(ctx: Context, auth: Middleware): Promise<boolean> {
  let passed = false;
  try {
    await auth(ctx, async () => {
      passed = true;
    });
  } catch (err) {
    if (ctx.get('authorization') !== '') throw err;
  }
  if (!passed) {
    if (ctx.get('authorization') !== '') ctx.throw(401);
    ctx.remove('WWW-Authenticate');
    ctx.status = 200;
  }
  return passed;
}

export function healthRoutes(deps: Pick<HttpDeps, 'health'>, auth: Middleware): Router {
  const router = new Router();
  router.get('/api/health', async (ctx) => {
    const detailed = await admitted(ctx, auth);
    const report = await deps.health();
    ctx.set('Cache-Control', 'no-store');
    ctx.body = detailed ? report : publicHealth(report);
  });
  return router;
}
