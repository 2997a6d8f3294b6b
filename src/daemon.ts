/**
 * @module Composition root of the daemon: settings → store (crash recovery) → config → worker pool → supervisor
 * → HTTP → config watcher; and the ordered shutdown (HTTP, actors with a grace period, pool, DB).
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { RepoConfig } from './config/schema.ts';
import type { Settings } from './config/settings.ts';
import { loadProjects } from './config/load.ts';
import { watchConfigDir, type ConfigWatcher } from './config/watch.ts';
import { createLogger } from './logger.ts';
import { Store } from './store/index.ts';
import { createPool, createTaskRunner } from './workers/pool.ts';
import { Supervisor, type LoadedConfig } from './supervisor/supervisor.ts';
import { createDocker, verifyProject } from './compose/verify.ts';
import { createContainerLogReader } from './compose/logs.ts';
import { createNotifier, validateNotificationUrl } from './notify/index.ts';
import { createApp, closeEventStreams } from './http/app.ts';
import { createMetrics } from './http/metrics.ts';
import type { HealthReport } from './http/ports.ts';
import type { Notice } from './machines/deploy-machine.ts';
import type { NotifyOutcome, VerifyResult } from './actors/repo-actor.ts';
import { VERSION } from './version.ts';
import { detectSelf, finaliseSelfUpdates, selfMatcher } from './compose/self-update.ts';

export interface DaemonOptions {
  settings: Settings;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Watch the config directory for changes (default true). */
  watch?: boolean;
  /** Listen for HTTP (default true). */
  http?: boolean;
  /** Only spawn these repository keys (one-shot CLI deploys). */
  only?: string[];
  /** Do not check repositories at start (one-shot CLI deploys send their own event). */
  checkOnStart?: boolean;
  /** Test hook: notification API base URL overrides per service. */
  notifyOverrides?: Record<string, string>;
}

export interface Daemon {
  readonly url: string | null;
  readonly supervisor: Supervisor;
  readonly store: Store;
  readonly log: Logger;
  readonly settings: Settings;
  close(): Promise<void>;
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { settings } = opts;
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger({ level: settings.logLevel, format: settings.logFormat });
  await mkdir(settings.dataPath, { recursive: true });
  const store = Store.open(path.join(settings.dataPath, 'shiparr.db'));
  const interrupted = store.markInterrupted({ exceptSelfUpdate: true });
  if (interrupted.length) log.warn({ deployments: interrupted.map((d) => d.id) }, 'deployments left open by a previous run were marked interrupted');

  const loadConfig = async (): Promise<LoadedConfig> => {
    const r = await loadProjects(settings.configPath, {
      env, dataPath: settings.dataPath, githubToken: settings.githubToken, checkNotificationUrl: validateNotificationUrl,
    });
    if (opts.only) r.projects = r.projects.map((p) => ({ ...p, repositories: p.repositories.filter((x) => opts.only?.includes(x.key)) }));
    return r;
  };
  const config = await loadConfig();
  for (const e of config.errors) log.error({ file: e.file, path: e.path }, `config error: ${e.message}`);

  const pool = createPool({ maxThreads: settings.workers, log: log.child({ component: 'pool' }) });
  const runTask = createTaskRunner(pool);

  const dockers = new Map<string, Dockerode>();
  const dockerFor = (host?: string): Dockerode => {
    const k = host ?? settings.dockerHost ?? '';
    let d = dockers.get(k);
    if (!d) dockers.set(k, (d = createDocker(k || undefined)));
    return d;
  };
  // Self-update: find our own container, and finish the deployments a replaced predecessor left open.
  const selfLog = log.child({ component: 'self-update' });
  const self = await detectSelf({ docker: dockerFor(), log: selfLog });
  await finaliseSelfUpdates({ store, self, docker: dockerFor(), log: selfLog });

  // De-duplication / recovery state survives restarts: kept per repository in the store.
  const notifier = createNotifier({
    log: log.child({ component: 'notify' }),
    overrides: opts.notifyOverrides,
    stateStore: {
      get: (repoKey) => (store.getRepository(repoKey)?.notifyState ?? undefined) as never,
      set: (repoKey, state) => store.updateRepositoryState(repoKey, { notifyState: state }),
    },
  });

  const verify = async (repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult> => {
    const r = await verifyProject({
      docker: dockerFor(repo.dockerHost),
      project: repo.composeProject,
      timeoutMs: repo.healthcheck.timeout * 1000,
      // Listing one project's containers is cheap: poll often so a healthy deploy is confirmed promptly.
      pollMs: 250,
      url: repo.healthcheck.url,
      retries: repo.healthcheck.retries,
      intervalMs: repo.healthcheck.interval * 1000,
      signal,
    });
    if (r.ok) return { ok: true, summary: `${r.containers.length} container(s) running/healthy` };
    return { ok: false, code: r.code, message: r.message, transient: r.transient };
  };

  const notify = async (repo: RepoConfig, notice: Notice): Promise<NotifyOutcome[]> => {
    const event =
      notice.kind === 'success' || notice.kind === 'check_recovered' ? 'success' : notice.kind === 'rolled_back' ? 'rolled_back' : 'failure';
    const run = notice.run;
    const result = await notifier.notify(
      {
        repoKey: repo.key,
        success: repo.notifications.success,
        failure: repo.notifications.failure,
        global: repo.globalNotifications,
        repeatIntervalMs: repo.notifyRepeatInterval * 1000,
        timeoutMs: repo.timeouts.notify * 1000,
      },
      {
        event,
        project: repo.project,
        repository: repo.name,
        commit: notice.commit,
        trigger: run?.trigger ?? 'poll',
        stage: notice.error?.stage,
        error: notice.error ? `${notice.error.code}: ${notice.error.message}` : undefined,
        durationMs: run ? Date.now() - run.startedAt : undefined,
        rolledBackTo: notice.kind === 'rolled_back' ? run?.previousCommit ?? undefined : undefined,
      },
    );
    return result.sent;
  };

  const supervisor = new Supervisor({
    store,
    runTask,
    verify,
    notify,
    loadConfig,
    log,
    maxConcurrentDeploys: settings.maxConcurrentDeploys,
    secrets: { ageKeyFile: settings.sopsAgeKeyFile, ageKey: settings.sopsAgeKey },
    checkOnStart: opts.checkOnStart ?? true,
    isSelf: selfMatcher(self),
  });
  supervisor.start(config);

  let server: Server | null = null;
  let app: ReturnType<typeof createApp> | null = null;
  let url: string | null = null;
  const shutdown = new AbortController();
  if (opts.http ?? true) {
    const metrics = createMetrics({ repositories: () => supervisor.list() });
    supervisor.subscribe(metrics.observe);
    const startedAt = Date.now();
    const health = async (): Promise<HealthReport> => {
      let db: HealthReport['db'] = { ok: true };
      try {
        store.ping();
      } catch (err) {
        db = { ok: false, error: (err as Error).message };
      }
      let docker: HealthReport['docker'] = { ok: true };
      try {
        await Promise.race([dockerFor().ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('docker ping timed out')), 2_000).unref())]);
      } catch (err) {
        docker = { ok: false, error: (err as Error).message };
      }
      const errors = supervisor.configErrors;
      return {
        status: db.ok && docker.ok && errors.length === 0 ? 'ok' : 'degraded',
        db,
        docker,
        config: { ok: errors.length === 0, errors },
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      };
    };
    app = createApp({
      supervisor,
      history: {
        getDeployment: (id) => store.getDeployment(id),
        getDeploymentLogs: (id) => store.getDeploymentLogs(id),
        listDeployments: (repoId, q) => store.listDeployments(repoId, q),
      },
      containers: createContainerLogReader(dockerFor(), (name) => supervisor.isManagedProject(name)),
      health,
      log: log.child({ component: 'http' }),
      auth: settings.auth,
      webhookSecret: settings.webhookSecret,
      metrics: metrics.registry,
      signal: shutdown.signal,
    });
    const koa = app;
    server = await new Promise<Server>((resolve, reject) => {
      const s = koa.listen(settings.port, settings.host, () => resolve(s));
      s.once('error', reject);
    });
    const addr = server.address() as AddressInfo;
    const host = settings.host === '0.0.0.0' || settings.host === '::' ? '127.0.0.1' : settings.host;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    log.info({ url, version: VERSION, projects: config.projects.length, configErrors: config.errors.length }, 'Shiparr is serving');
  }

  let watcher: ConfigWatcher | null = null;
  if (opts.watch ?? true) {
    watcher = watchConfigDir(settings.configPath, () => supervisor.reload(), { log: log.child({ component: 'config' }) });
    // A file written between the first load and the end of the watcher's initial scan raises no event: reload once
    // the watcher is ready so such an edit is not missed until the next change (the diff is empty otherwise).
    await watcher.ready;
    await supervisor.reload();
  }

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      log.info('shutting down');
      await watcher?.close();
      shutdown.abort();
      if (app) closeEventStreams(app);
      if (server) {
        const s = server;
        await new Promise<void>((r) => {
          s.close(() => r());
          s.closeAllConnections?.();
        });
      }
      await supervisor.stop(settings.shutdownGraceSeconds * 1000);
      await pool.destroy();
      store.close();
      log.info('stopped');
    })());

  return { url, supervisor, store, log, settings, close };
}
