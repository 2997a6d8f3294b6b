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
import { unauthenticatedExposure, type Settings } from '../config/settings.ts';
import { SettingsError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import { createApp, closeEventStreams } from '../http/app.ts';
import { refuseTunnel } from '../http/errors.ts';
import type { HealthReport, PlanPort, SupervisorPort } from '../http/ports.ts';
import { createContainerLogReader } from '../compose/logs.ts';
import { pingDocker } from '../compose/verify.ts';
import { VERSION } from '../version.ts';

/** What HTTP needs from the supervisor beyond the port: config errors for health, managed projects for logs. */
export interface HttpSupervisor extends SupervisorPort {
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
  /** Plans for GET /api/repositories/:id/plan. */
  plans?: PlanPort;
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
    const engine = await probe(() => pingDocker(docker, 2_000));
    const errors = supervisor.configErrors;
    return {
      status: db.ok && engine.ok && errors.length === 0 ? 'ok' : 'degraded',
      db,
      docker: engine,
      config: { ok: errors.length === 0, errors },
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
  };
  // Metrics are the app's own: it creates the registry and subscribes it to the supervisor until `signal` aborts.
  const app = createApp({
    supervisor,
    history: {
      getDeployment: (id) => store.getDeployment(id),
      getDeploymentLogs: (id) => store.getDeploymentLogs(id),
      listDeployments: (repoId, q) => store.listDeployments(repoId, q),
    },
    containers: createContainerLogReader(docker, (name) => supervisor.isManagedProject(name)),
    health,
    log: deps.log.child({ component: 'http' }),
    auth: settings.auth,
    allowedHosts: settings.allowedHosts,
    webhookSecret: settings.webhookSecret,
    limits: settings.limits,
    signal: shutdown.signal,
    ...(deps.plans ? { plans: deps.plans } : {}),
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
