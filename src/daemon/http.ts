/**
 * @module Boot step 4, HTTP: the Koa app over the supervisor, the deployment history and container logs, with the
 * health report (database, engine, config); listen, and close (event streams, then connections).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { ConfigIssue } from '../domain/types.ts';
import type { RepoEngine } from '../config/schema.ts';
import { unauthenticatedExposure, type Settings } from '../config/settings.ts';
import { SettingsError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import { createApp, closeEventStreams } from '../http/app.ts';
import { refuseTunnel } from '../http/errors.ts';
import type { EngineStatus, HealthReport, ImageWatchPort, PlanPort, SupervisorPort } from '../http/ports.ts';
import { createContainerLogReader } from '../compose/logs.ts';
import { createDocker, pingDocker } from '../compose/verify.ts';
import { createServices, type ServiceSupervisor } from './services.ts';
import { VERSION } from '../version.ts';

/** What HTTP needs from the supervisor beyond the port: config errors for health, managed projects for logs. */
export interface HttpSupervisor extends SupervisorPort, ServiceSupervisor {
  readonly configErrors: ConfigIssue[];
  isManagedProject(name: string): boolean;
}

export interface HttpServer {
  /** Base URL clients can reach (a wildcard host becomes 127.0.0.1). */
  url: string;
  /** Ends the event streams, stops listening and closes every connection. */
  close(): Promise<void>;
}

export async function startHttp(deps: {
  settings: Settings;
  store: Store;
  supervisor: HttpSupervisor;
  docker: Dockerode;
  log: Logger;
  /** Pings every engine the repositories use (per-engine health); without it only `docker` is checked. */
  engines?: () => Promise<EngineStatus[]>;
  /** Every engine's client, for container logs (default: `docker` alone). */
  dockers?: () => readonly Dockerode[];
  /** The client of a repository's engine (the daemon's effects); without it, one client per DOCKER_HOST. */
  engineDocker?: (engine?: RepoEngine | string) => Dockerode;
  /** Plans for GET /api/repositories/:id/plan. */
  plans?: PlanPort;
  /** The image watch for GET /api/repositories/:id/images and POST …/images/check. */
  images?: ImageWatchPort;
}): Promise<HttpServer> {
  const { settings, store, supervisor, docker } = deps;
  // Refused before anything starts (startDaemon, and `shiparr serve` with exit 2); accepted only with the flag.
  const exposure = unauthenticatedExposure({ ...settings, allowUnauthenticated: false });
  if (exposure && !settings.allowUnauthenticated) throw new SettingsError([exposure]);
  if (exposure)
    deps.log.warn(
      { host: settings.host, port: settings.port },
      'SHIPARR_ALLOW_UNAUTHENTICATED=true: the API listens on a network address without authentication; anyone who can reach the port can deploy',
    );
  const shutdown = new AbortController();
  const startedAt = Date.now();
  const health = async (): Promise<HealthReport> => {
    const db = await probe(() => store.ping());
    const [engine, engines] = await Promise.all([
      probe(() => pingDocker(docker, 2_000)),
      deps.engines?.() ?? Promise.resolve(undefined),
    ]);
    const errors = supervisor.configErrors;
    const enginesOk = engines?.every((e) => e.ok) ?? true;
    return {
      status: db.ok && engine.ok && enginesOk && errors.length === 0 ? 'ok' : 'degraded',
      db,
      docker: engine,
      ...(engines ? { engines } : {}),
      config: { ok: errors.length === 0, errors },
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
  };
  // One client per DOCKER_HOST a repository names; the daemon's own engine otherwise.
  const dockers = new Map<string, Dockerode>();
  const dockerFor = (host?: RepoEngine | string): Dockerode => {
    if (deps.engineDocker) return deps.engineDocker(host);
    if (typeof host !== 'string' || !host) return docker;
    let d = dockers.get(host);
    if (!d) dockers.set(host, (d = createDocker(host)));
    return d;
  };
  const services = createServices({
    supervisor,
    store,
    docker: dockerFor,
    log: deps.log.child({ component: 'services' }),
  });
  void services.warm();
  // Metrics are the app's own: it creates the registry and subscribes it to the supervisor until `signal` aborts.
  const app = createApp({
    supervisor,
    history: {
      getDeployment: (id) => store.getDeployment(id),
      getDeploymentLogs: (id) => store.getDeploymentLogs(id),
      listDeployments: (repoId, q) => store.listDeployments(repoId, q),
      latestDeployments: (project) => store.latestDeployments(project),
    },
    containers: createContainerLogReader(deps.dockers ?? docker, (name) => supervisor.isManagedProject(name)),
    services,
    health,
    log: deps.log.child({ component: 'http' }),
    auth: settings.auth,
    allowedHosts: settings.allowedHosts,
    webhookSecret: settings.webhookSecret,
    limits: settings.limits,
    signal: shutdown.signal,
    ...(deps.plans ? { plans: deps.plans } : {}),
    ...(deps.images ? { images: deps.images } : {}),
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(settings.port, settings.host, () => resolve(s));
    s.once('error', reject);
  });
  server.on('connect', (_req, socket: Duplex) => refuseTunnel(socket));
  const { port } = server.address() as AddressInfo;
  const host = settings.host === '0.0.0.0' || settings.host === '::' ? '127.0.0.1' : settings.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: async () => {
      shutdown.abort();
      closeEventStreams(app);
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      });
    },
  };
}

/** `{ ok: true }`, or `{ ok: false, error }` with the message of what `check` threw or rejected with. */
async function probe(check: () => unknown): Promise<{ ok: boolean; error?: string }> {
  try {
    await check();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
