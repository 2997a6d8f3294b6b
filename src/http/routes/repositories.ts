/**
 * @module /api/repositories: list, one repository (config + live actor state), its deployment history, and the
 * commands deploy / rollback / suspend / resume, which the supervisor turns into actor events.
 */
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { NotFoundError, ValidationError } from '../../errors.ts';
import { auditOf } from '../auth.ts';
import { readOptionalJson } from '../body.ts';
import { parseRepoRef, queryBool, queryInt } from '../params.ts';
import type { DeploymentStatus, RepoStatus } from '../../domain/types.ts';
import type { HttpDeps } from '../ports.ts';
import { publicDeployment, publicRepo } from '../present.ts';

const COMMIT = /^[0-9a-f]{7,40}$/i;
const FINISHED: ReadonlySet<DeploymentStatus> = new Set(['success', 'failed', 'rolled_back', 'interrupted', 'skipped']);

/** Default and maximum `?timeout=` (seconds) for `?wait=true`. */
const WAIT_DEFAULT_SECONDS = 600;
const WAIT_MAX_SECONDS = 3600;

type Deps = Pick<HttpDeps, 'supervisor' | 'history'>;

/** Resolves `:id` (numeric id or URL-encoded "project/repo") to the live status, 404 when unknown. */
function findRepo(deps: Pick<HttpDeps, 'supervisor'>, raw: string | undefined): RepoStatus {
  const ref = parseRepoRef(raw);
  const repo = deps.supervisor.get(ref);
  if (!repo) throw new NotFoundError(`repository ${typeof ref === 'number' ? ref : `"${ref}"`} not found`);
  return repo;
}

/**
 * Reads the optional `{ "commit": "<sha>" }` body of deploy. Unknown fields are refused so that a
 * typo (`{"sha": …}`) does not silently deploy something else.
 */
async function readCommitBody(ctx: Context): Promise<string | undefined> {
  return (await readTargetBody(ctx, ['commit'])).commit;
}

/**
 * Reads the optional rollback body: `{ "deploymentId": N }` (a successful deployment of this repository) or
 * `{ "commit": "<sha>" }`, not both.
 */
async function readRollbackBody(ctx: Context): Promise<{ commit?: string; deploymentId?: number }> {
  const target = await readTargetBody(ctx, ['commit', 'deploymentId']);
  if (target.commit !== undefined && target.deploymentId !== undefined)
    throw new ValidationError('give either deploymentId or commit, not both');
  return target;
}

async function readTargetBody(
  ctx: Context,
  allowed: readonly string[],
): Promise<{ commit?: string; deploymentId?: number }> {
  const body = await readOptionalJson(ctx);
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body must be a JSON object');
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new ValidationError(
      `unknown field(s): ${unknown
        .slice(0, 5)
        .map((k) => JSON.stringify(k.slice(0, 40)))
        .join(', ')}`,
    );
  const out: { commit?: string; deploymentId?: number } = {};
  const id = fields['deploymentId'];
  if (id !== undefined && id !== null) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)
      throw new ValidationError('deploymentId must be a positive integer');
    out.deploymentId = id;
  }
  const commit = fields['commit'];
  if (commit === undefined || commit === null) return out;
  if (typeof commit !== 'string' || !COMMIT.test(commit))
    throw new ValidationError('commit must be a 7 to 40 character hex sha');
  out.commit = commit.toLowerCase();
  return out;
}

export function repositoryRoutes(deps: Deps, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);

  router.get('/api/repositories', (ctx) => {
    ctx.body = deps.supervisor.list().map(publicRepo);
  });

  router.get('/api/repositories/:id', (ctx) => {
    ctx.body = publicRepo(findRepo(deps, ctx.params['id']));
  });

  router.get('/api/repositories/:id/deployments', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const limit = queryInt(ctx, 'limit', 1, 100, 20);
    const before = queryInt(ctx, 'before', 1, Number.MAX_SAFE_INTEGER);
    const page = deps.history.listDeployments(repo.id, before === undefined ? { limit } : { limit, before });
    ctx.body = { items: page.items.map(publicDeployment), nextBefore: page.nextBefore };
  });

  router.post('/api/repositories/:id/deploy', async (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const wait = queryBool(ctx, 'wait');
    const timeout = queryInt(ctx, 'timeout', 1, WAIT_MAX_SECONDS, WAIT_DEFAULT_SECONDS);
    const commit = await readCommitBody(ctx);
    const { deploymentId } = deps.supervisor.deploy(
      repo.key,
      commit === undefined ? { trigger: 'api', ...auditOf(ctx) } : { trigger: 'api', commit, ...auditOf(ctx) },
    );
    if (!wait) {
      ctx.status = 202;
      ctx.body = { deploymentId, status: 'pending' };
      return;
    }
    // A long wait must not be cut by the socket's idle timeout; the client decides how long it listens.
    ctx.req.setTimeout(0);
    const result = await deps.supervisor.waitForDeployment(deploymentId, timeout * 1000);
    if (!result) {
      ctx.status = 202;
      ctx.body = { deploymentId, status: 'pending' };
      return;
    }
    ctx.status = FINISHED.has(result.status) ? 200 : 202;
    ctx.body = { ...publicDeployment(result), deploymentId: result.id };
  });

  router.post('/api/repositories/:id/rollback', async (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const target = await readRollbackBody(ctx);
    const { deploymentId } = deps.supervisor.rollback(repo.key, { ...target, ...auditOf(ctx) });
    ctx.status = 202;
    ctx.body = { deploymentId, status: 'pending' };
  });

  router.post('/api/repositories/:id/suspend', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    ctx.body = publicRepo(deps.supervisor.suspend(repo.key, auditOf(ctx)));
  });

  router.post('/api/repositories/:id/resume', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    ctx.body = publicRepo(deps.supervisor.resume(repo.key, auditOf(ctx)));
  });

  return router;
}
