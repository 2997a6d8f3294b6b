/**
 * @module The web UI's repository views and service actions: the containers of a repository's compose project,
 * restart/stop/start of one service, removal of the project's containers (never volumes or files), clearing the
 * pinned commit, and the history of those actions. Every POST is behind the same auth and CSRF rule as the others.
 *
 * A `mode: swarm` repository lists its stack's services and tasks (`services` next to an empty `items`), reads a
 * service's logs (`GET …/services/:service/logs`, `?follow=1` streams like the container logs), and its actions go
 * through the service API (see daemon/services.ts); an action Swarm cannot do on a service is 409 `refused`.
 */
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { AppError, NotFoundError } from '../../errors.ts';
import { auditOf } from '../auth.ts';
import { ServiceUnavailableError } from '../errors.ts';
import { followLogs } from '../log-follow.ts';
import { parseRepoRef, queryBool, queryInt } from '../params.ts';
import type { ActionRecord, RepoStatus } from '../../domain/types.ts';
import type { EngineAction, HttpDeps, ServicePort } from '../ports.ts';
import { publicAction } from '../present.ts';

/** Compose service names (compose allows letters, digits, `_`, `.`, `-`). */
const SERVICE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** 409 `{error:{code:'refused'}}`: the action cannot be done on this service (the message says why). */
class RefusedError extends AppError {
  readonly code = 'refused';
  override readonly status = 409;
  override readonly expose = true;
}

/** 409 `{error:{code:'busy'}}`: a deploy of the repository runs; the action was not started. */
class BusyError extends AppError {
  readonly code = 'busy';
  override readonly status = 409;
  override readonly expose = true;
}

type Deps = Pick<HttpDeps, 'supervisor' | 'services'> & Partial<Pick<HttpDeps, 'limits' | 'signal'>>;

function findRepo(deps: Deps, raw: string | undefined): RepoStatus {
  const ref = parseRepoRef(raw);
  const repo = deps.supervisor.get(ref);
  if (!repo) throw new NotFoundError(`repository ${typeof ref === 'number' ? ref : `"${ref}"`} not found`);
  return repo;
}

function servicesOf(deps: Deps): ServicePort {
  if (!deps.services) throw new ServiceUnavailableError('container actions are not available', 30);
  return deps.services;
}

/** Runs an engine action and answers `{ action }`, 404 for a service without container, 409 while deploying. */
async function act(ctx: Context, deps: Deps, action: EngineAction, service: string | null): Promise<void> {
  const repo = findRepo(deps, ctx.params['id']);
  const r = await servicesOf(deps).act(repo.key, action, service, auditOf(ctx));
  if (!r.ok && r.reason === 'busy')
    throw new BusyError(`repository ${repo.key} is deploying; try again when the deploy has finished`);
  if (!r.ok && r.reason === 'refused') throw new RefusedError(r.message);
  if (!r.ok) throw new NotFoundError(`service "${service}" has no container in ${repo.key}`);
  ctx.body = { action: publicAction(r.action) };
}

export function actionRoutes(deps: Deps, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);

  router.get('/api/repositories/:id/containers', async (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const port = servicesOf(deps);
    const stack = (await port.stackServices?.(repo.key)) ?? null;
    ctx.body = stack === null ? { items: await port.containers(repo.key) } : { items: [], services: stack };
  });

  router.get('/api/repositories/:id/services/:service/logs', async (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const service = ctx.params['service'];
    const notFound = () => new NotFoundError(`service "${service}" not found in the stack of ${repo.key}`);
    if (service === undefined || !SERVICE.test(service)) throw notFound();
    const read = servicesOf(deps).serviceLogs?.bind(deps.services);
    if (!read) throw new ServiceUnavailableError('service logs are not available', 30);
    const tail = queryInt(ctx, 'tail', 1, 5000, 100);
    const since = queryInt(ctx, 'since', 0, 253402300799);
    const q = since === undefined ? { tail } : { tail, since };
    if (!queryBool(ctx, 'follow')) {
      const text = await read(repo.key, service, q, null);
      if (text === null || typeof text !== 'string') throw notFound();
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = text;
      return;
    }
    return followLogs(ctx, deps, 'service logs', (signal) => read(repo.key, service, q, signal), notFound);
  });

  for (const action of ['restart', 'stop', 'start'] as const) {
    router.post(`/api/repositories/:id/services/:service/${action}`, async (ctx) => {
      const service = ctx.params['service'];
      if (service === undefined || !SERVICE.test(service)) {
        findRepo(deps, ctx.params['id']);
        throw new NotFoundError('unknown service');
      }
      await act(ctx, deps, action, service);
    });
  }

  router.post('/api/repositories/:id/remove', (ctx) => act(ctx, deps, 'remove', null));

  router.post('/api/repositories/:id/unpin', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const action: ActionRecord = servicesOf(deps).unpin(repo.key, auditOf(ctx));
    ctx.body = { action: publicAction(action) };
  });

  router.get('/api/repositories/:id/actions', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const limit = queryInt(ctx, 'limit', 1, 100, 20);
    const before = queryInt(ctx, 'before', 1, Number.MAX_SAFE_INTEGER);
    const page = servicesOf(deps).listActions(repo.id, before === undefined ? { limit } : { limit, before });
    ctx.body = { items: page.items.map(publicAction), nextBefore: page.nextBefore };
  });

  return router;
}
