/**
 * @module The Koa application: error middleware first, then open routes (health, webhooks), then the routers behind
 * Basic Auth. Built from ports only (HttpDeps); it never reaches into actors, workers or the supervisor's internals.
 */
import Koa from 'koa';
import type { Context, Next } from 'koa';
import type { Router } from '@koa/router';
import { createAuth } from './auth.ts';
import { drainUnreadBody } from './body.ts';
import { errorMiddleware } from './errors.ts';
import { createFailureLimiter } from './limits.ts';
import { createHostGuard } from './guard.ts';
import { createMetrics } from './metrics.ts';
import type { HttpDeps } from './ports.ts';
import { actionRoutes } from './routes/actions.ts';
import { containerRoutes } from './routes/containers.ts';
import { deploymentRoutes } from './routes/deployments.ts';
import { type EventStreams, eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { planRoutes } from './routes/plan.ts';
import { imageRoutes } from './routes/images.ts';
import { projectRoutes } from './routes/projects.ts';
import { reloadRoutes } from './routes/reload.ts';
import { repositoryRoutes } from './routes/repositories.ts';
import { uiRoutes } from './routes/ui.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { widgetCors, widgetRoutes } from './routes/widgets.ts';

const streamsByApp = new WeakMap<Koa, EventStreams>();

/** Headers every answer gets: no MIME sniffing, no referrer leaks; the API is not meant to be framed by others. */
async function baseHeaders(ctx: Context, next: Next): Promise<void> {
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  await next();
}

const CLIENT_FAULT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
]);

/**
 * Errors Koa reports after the answer was sent that the client caused (a malformed chunk, a dropped connection):
 * worth a debug line, not an error-level alert.
 */
function isClientFault(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const { code, status } = err as { code?: unknown; status?: unknown };
  if (typeof status === 'number' && status < 500) return true;
  return typeof code === 'string' && (code.startsWith('HPE_') || CLIENT_FAULT_CODES.has(code));
}

/**
 * Builds the HTTP application. Throws when auth is enabled without a password (refuse to start open by mistake).
 * If `deps.metrics` is omitted, a registry is created here, fed from `supervisor.subscribe` and `supervisor.list()`.
 */
export function createApp(deps: HttpDeps): Koa {
  const auth = createAuth(deps.auth);
  const widgetAuth = deps.auth.publicWidgets ? (_ctx: Context, next: Next) => next() : auth;
  const log = deps.log.child({ component: 'http' });

  let registry = deps.metrics;
  if (!registry) {
    const metrics = createMetrics({
      repositories: () => deps.supervisor.list(),
      engines: async () => (await deps.health()).engines ?? [],
    });
    const unsubscribe = deps.supervisor.subscribe(metrics.observe);
    deps.signal?.addEventListener('abort', unsubscribe, { once: true });
    registry = metrics.registry;
  }

  const events = eventRoutes(deps, auth);
  const routers: Router[] = [
    healthRoutes(deps, auth),
    webhookRoutes(deps),
    widgetRoutes(deps, widgetAuth),
    projectRoutes(deps, auth),
    repositoryRoutes(deps, auth),
    planRoutes(deps, auth),
    deploymentRoutes(deps, auth),
    reloadRoutes(deps, auth),
    containerRoutes(deps, auth),
    actionRoutes(deps, auth),
    imageRoutes(deps, auth),
    events.router,
    metricsRoutes(registry, auth),
    uiRoutes(auth),
  ];

  const app = new Koa();
  app.use(drainUnreadBody());
  app.use(errorMiddleware);
  app.use(baseHeaders);
  app.use(createFailureLimiter(deps));
  app.use(createHostGuard(deps));
  app.use(widgetCors);
  for (const r of routers) app.use(r.routes());
  // After every router: 405 + Allow for a known path with a wrong method (404 stays for unknown paths).
  for (const r of routers) app.use(r.allowedMethods());

  app.on('error', (err: unknown, ctx?: Context) => {
    if (isClientFault(err)) {
      log.debug(
        { err: { code: (err as { code?: unknown }).code, message: (err as Error).message }, path: ctx?.path },
        'client connection error',
      );
      return;
    }
    log.error({ err, method: ctx?.method, path: ctx?.path }, 'http request failed');
  });
  // Koa's default handler would print to stderr; errors are logged above instead.
  app.silent = true;

  streamsByApp.set(app, events.streams);
  if (deps.signal) {
    if (deps.signal.aborted) events.streams.closeAll();
    else deps.signal.addEventListener('abort', () => events.streams.closeAll(), { once: true });
  }
  return app;
}

/** Ends every open /api/events stream of `app` and refuses new ones (call before `server.close()` on shutdown). */
export function closeEventStreams(app: Koa): void {
  streamsByApp.get(app)?.closeAll();
}

/** Number of open /api/events streams of `app` (for tests and diagnostics). */
export function openEventStreams(app: Koa): number {
  return streamsByApp.get(app)?.size ?? 0;
}
