/** @module GET /api/projects, /api/projects/:name, /api/projects/:name/repositories (config + store, via the supervisor). */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { parseName } from '../params.ts';
import type { ProjectInfo } from '../../domain/types.ts';
import type { HttpDeps } from '../ports.ts';
import { publicRepo } from '../present.ts';

export function findProject(deps: Pick<HttpDeps, 'supervisor'>, name: string): ProjectInfo {
  const project = deps.supervisor.projects().find((p) => p.name === name);
  if (!project) throw new NotFoundError(`project "${name}" not found`);
  return project;
}

export function projectRoutes(deps: Pick<HttpDeps, 'supervisor'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  router.get('/api/projects', (ctx) => {
    ctx.body = deps.supervisor.projects();
  });
  router.get('/api/projects/:name', (ctx) => {
    ctx.body = findProject(deps, parseName(ctx.params['name']));
  });
  router.get('/api/projects/:name/repositories', (ctx) => {
    const project = findProject(deps, parseName(ctx.params['name']));
    ctx.body = deps.supervisor
      .list()
      .filter((r) => r.project === project.name)
      .map(publicRepo);
  });
  return router;
}
