/**
 * @module The daemon's composition root. Boot steps in order: store (crash recovery) → config → effects (worker
 * pool, Docker clients, verify, notify) → self-update recovery → plaintext sweep → supervisor (+ history pruning)
 * → HTTP → config watcher; `close()` runs the ordered shutdown (shutdown.ts).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { unauthenticatedExposure, type Settings } from '../config/settings.ts';
import { SettingsError } from '../errors.ts';
import type { ConfigWatcher } from '../config/watch.ts';
import { createLogger } from '../logger.ts';
import { registerSecretValues, secretEnvValues } from '../lib/redact.ts';
import type { Store } from '../store/index.ts';
import { Supervisor, engineImages } from '../supervisor/supervisor.ts';
import { selfMatcher } from '../compose/self-update.ts';
import { selfApplier } from './self-apply.ts';
import { VERSION } from '../version.ts';
import { openStore, recoverSelfUpdates, scheduleHistoryPruning, sweepPlaintext } from './store.ts';
import { configLoader, watchConfig } from './config.ts';
import { remoteComposeWarnings } from '../compose/engine.ts';
import { createEffects } from './effects.ts';
import { createPlanner, loadPlanKey } from './plan.ts';
import { startHttp, type HttpServer } from './http.ts';
import { shutdownOnce } from './shutdown.ts';
import { startCommitStatuses, type CommitStatusTiming } from './commit-status.ts';
import { ImageWatch, observeServices, registryPort, writeBackPort } from './image-watch.ts';

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
  /** Test hook: shorter back-off for commit statuses. */
  commitStatusTiming?: CommitStatusTiming;
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
  // An unauthenticated API on a network address is refused before the store or the pool exist.
  const exposure = (opts.http ?? true) ? unauthenticatedExposure(settings) : null;
  if (exposure) throw new SettingsError([exposure]);
  // Known secret values are masked wherever text leaves the process (logs, store, API, notifications).
  registerSecretValues('environment', [
    ...secretEnvValues(opts.env ?? process.env),
    settings.auth.password,
    settings.webhookSecret,
    settings.githubToken,
    settings.sopsAgeKey,
  ]);
  const log = opts.log ?? createLogger({ level: settings.logLevel, format: settings.logFormat });
  const store = await openStore(settings, log);

  const loadConfig = configLoader(settings, opts.env ?? process.env, opts.only, log);
  const config = await loadConfig();
  for (const e of config.errors) log.error({ file: e.file, path: e.path }, `config error: ${e.message}`);

  const effects = createEffects({ settings, store, log, notifyOverrides: opts.notifyOverrides });
  const { self, finalised } = await recoverSelfUpdates(store, effects.docker(), log, settings.dataPath);

  await sweepPlaintext(store, log);
  // With build: true, dotenv env files are decrypted here instead of into the checkout (the build context).
  const secrets = {
    ageKeyFile: settings.sopsAgeKeyFile,
    ageKey: settings.sopsAgeKey,
    plaintextDir: path.join(settings.dataPath, 'plaintext'),
  };
  // Plans: the content labels' HMAC key, the generated override files, scratch dirs (left by a dead process: removed).
  const hmacKey = await loadPlanKey(settings.dataPath);
  const scratchRoot = path.join(settings.dataPath, 'scratch');
  await rm(scratchRoot, { recursive: true, force: true });
  const supervisor = new Supervisor({
    store,
    runTask: effects.runTask,
    verify: effects.verify,
    notify: effects.notify,
    loadConfig,
    log,
    maxConcurrentDeploys: settings.maxConcurrentDeploys,
    maxConcurrentDeploysPerHost: settings.maxConcurrentDeploysPerHost,
    secrets,
    checkOnStart: opts.checkOnStart ?? true,
    isSelf: selfMatcher(self),
    selfApply: selfApplier(self, settings.dataPath),
    generatedDir: path.join(settings.dataPath, 'generated'),
    images: engineImages((repo) => effects.docker(repo.engine ?? repo.dockerHost)),
    engine: (repo) => {
      const e = effects.engine(repo.engine);
      return { ...e, composeWarnings: e.remote ? remoteComposeWarnings : undefined };
    },
    plan: { hmacKey, generatedDir: path.join(settings.dataPath, 'generated') },
  });
  // Subscribed before the first deploy starts: its `pending` goes out too.
  const statuses = startCommitStatuses({
    supervisor,
    store,
    log,
    publicUrl: settings.publicUrl,
    timing: opts.commitStatusTiming,
  });
  supervisor.start(config);
  // Each boot step below is synchronous and grows with the number of repositories: a turn of the event loop between
  // them keeps any one stretch short (the supervisor's spawn slices, timers and HTTP run in between).
  await yieldToLoop();
  const stopPruning = scheduleHistoryPruning(store, settings.historyKeep, log);
  // Self-updates finished at boot are notified by this (the new) process: the old one was replaced mid-deploy.
  for (const f of finalised) {
    const repo = config.projects.flatMap((p) => p.repositories).find((r) => r.key === f.repoKey);
    if (!repo) continue;
    const notice = {
      kind: f.status,
      run: { trigger: 'self-update', startedAt: Date.now(), previousCommit: null },
      error: f.error ? { stage: 'verifying', code: 'SELF_UPDATE', message: f.error } : null,
      commit: f.commit,
    };
    effects
      .notify(repo, notice)
      .then((results) => {
        if (results.length > 0) store.setDeploymentNotifications(f.id, results);
      })
      .catch((err: unknown) => log.warn({ err, deploymentId: f.id }, 'self-update notification failed'));
  }

  // The image watch (image_updates): its own timers, re-timed after every config reload; deploys go to the actors.
  const imageWatch = new ImageWatch({
    repos: () =>
      supervisor.list().flatMap((s) => {
        const repo = supervisor.repoConfig(s.key);
        return repo ? [{ repo, suspended: s.suspended, deployedCommit: s.lastDeployedCommit }] : [];
      }),
    observe: (repo) => observeServices(effects.docker(repo.engine ?? repo.dockerHost), repo),
    registry: registryPort(),
    store,
    notify: (repo, notice) => effects.notifyImage(repo, notice),
    deploy: (key, changes) => supervisor.imageUpdate(key, changes),
    writeBack: writeBackPort(scratchRoot, (key) => supervisor.check(key, 'api', { triggeredBy: 'image-watch' })),
    log,
  });
  await yieldToLoop();
  imageWatch.sync();
  const stopImageSync = supervisor.subscribe((e) => {
    if (e.type === 'config.reloaded') imageWatch.sync();
  });

  let http: HttpServer | null = null;
  if (opts.http ?? true) {
    await yieldToLoop();
    const plans = createPlanner({
      runTask: effects.runTask,
      repoConfig: (key) => supervisor.repoConfig(key),
      secrets,
      hmacKey,
      scratchRoot,
    });
    const repos = () => supervisor.list().flatMap((r) => supervisor.repoConfig(r.key) ?? []);
    const engines = () => effects.engineHealth(repos());
    const dockers = () => effects.dockers(repos());
    http = await startHttp({
      settings,
      store,
      supervisor,
      docker: effects.docker(),
      log,
      engines,
      dockers,
      engineDocker: (e) => effects.docker(e),
      plans,
      images: imageWatch,
    });
  }
  let watcher: ConfigWatcher | null = null;
  if (opts.watch ?? true) watcher = await watchConfig(settings, () => supervisor.reload(), log);

  if (http) {
    // Logged last: once this line is out, the API answers, the watcher runs and the caller's signal handlers work.
    log.info(
      {
        url: http.url,
        version: VERSION,
        auth: settings.auth.mode,
        projects: config.projects.length,
        configErrors: config.errors.length,
      },
      'Shiparr is serving',
    );
  }

  const shutdown = shutdownOnce({
    log,
    watcher,
    http,
    supervisor,
    graceMs: settings.shutdownGraceSeconds * 1000,
    statuses,
    pool: effects.pool,
    store,
  });
  const close = async () => {
    stopPruning();
    stopImageSync();
    await imageWatch.stop();
    return shutdown();
  };
  return { url: http?.url ?? null, supervisor, store, log, settings, close };
}
