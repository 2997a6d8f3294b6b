/**
 * @module The image watch of a repository (`image_updates`): `GET /api/repositories/:id/images` lists per service the
 * image it runs, the local and the registry's digest, the status (up-to-date, update-available, error, skipped) with
 * its reason, and when it was checked; `POST /api/repositories/:id/images/check` starts a check now (202). 404 for an
 * unknown repository, 409 when its image watch is off or it is suspended, 503 when the process has no image watch.
 */
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { ConflictError, NotFoundError } from '../../errors.ts';
import { ServiceUnavailableError } from '../errors.ts';
import { parseRepoRef } from '../params.ts';
import type { RepoStatus } from '../../domain/types.ts';
import type { HttpDeps, ImageWatchPort } from '../ports.ts';

type Deps = Pick<HttpDeps, 'supervisor' | 'images'>;

function findRepo(deps: Deps, raw: string | undefined): RepoStatus {
  const ref = parseRepoRef(raw);
  const repo = deps.supervisor.get(ref);
  if (!repo) throw new NotFoundError(`repository ${typeof ref === 'number' ? ref : `"${ref}"`} not found`);
  return repo;
}

function imagesOf(deps: Deps): ImageWatchPort {
  if (!deps.images) throw new ServiceUnavailableError('the image watch is not available in this process', 30);
  return deps.images;
}

export function imageRoutes(deps: Deps, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);

  router.get('/api/repositories/:id/images', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const images = imagesOf(deps);
    const settings = images.settings(repo.key);
    ctx.body = {
      repository: repo.key,
      mode: settings?.mode ?? 'off',
      interval: settings?.interval ?? null,
      services: images.entries(repo.key).map((e) => ({
        service: e.service,
        image: e.image,
        localDigest: e.localDigest,
        remoteDigest: e.remoteDigest,
        status: e.status,
        reason: e.reason,
        errorCode: e.errorCode,
        checkedAt: e.checkedAt,
        newerTag: e.newerTag,
      })),
    };
  });

  router.post('/api/repositories/:id/images/check', (ctx) => {
    const repo = findRepo(deps, ctx.params['id']);
    const r = imagesOf(deps).checkNow(repo.key);
    if (r.result === 'not-watched')
      throw new ConflictError(`repository ${repo.key} has image_updates off: set notify or auto to watch its images`);
    if (r.result === 'suspended') throw new ConflictError(`repository ${repo.key} is suspended; resume it first`);
    ctx.status = 202;
    ctx.body = { accepted: true, repository: repo.key };
  });
  return router;
}
