/**
 * @module Boot step 3, the effects the deploy actors call out to: the worker pool and its task runner, one Docker
 * client per DOCKER_HOST, container verification, and notifications (de-duplication state kept in the store).
 */
import type Dockerode from 'dockerode';
import type { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { RepoConfig } from '../config/schema.ts';
import type { Settings } from '../config/settings.ts';
import type { Store } from '../store/index.ts';
import type { VerifyResult } from '../domain/types.ts';
import { createPool, createTaskRunner } from '../workers/pool.ts';
import type { RunTask } from '../workers/types.ts';
import { createDocker, verifyProject, verifyStack } from '../compose/verify.ts';
import { createNotifier, isNotifyState, notifyNotice, type DeployNotice, type NotifyResult } from '../notify/index.ts';

export interface Effects {
  pool: Piscina;
  runTask: RunTask;
  /** The client for `host` (default: the repository-less SHIPARR_DOCKER_HOST / local engine), created once. */
  docker(host?: string): Dockerode;
  verify(repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult>;
  notify(repo: RepoConfig, notice: DeployNotice): Promise<NotifyResult[]>;
}

export function createEffects(opts: {
  settings: Settings;
  store: Store;
  log: Logger;
  notifyOverrides?: Record<string, string>;
}): Effects {
  const { settings, store, log } = opts;
  const pool = createPool({ maxThreads: settings.workers, log: log.child({ component: 'pool' }) });

  const dockers = new Map<string, Dockerode>();
  const docker = (host?: string): Dockerode => {
    const k = host ?? settings.dockerHost ?? '';
    let d = dockers.get(k);
    if (!d) dockers.set(k, (d = createDocker(k || undefined)));
    return d;
  };

  const verify = async (repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult> => {
    if (repo.mode === 'swarm')
      return verifyStack({
        docker: docker(repo.dockerHost),
        stack: repo.composeProject,
        timeoutMs: repo.healthcheck.timeout * 1000,
        pollMs: 250,
        url: repo.healthcheck.url,
        retries: repo.healthcheck.retries,
        intervalMs: repo.healthcheck.interval * 1000,
        signal,
      });
    const r = await verifyProject({
      docker: docker(repo.dockerHost),
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

  // De-duplication / recovery state survives restarts: kept per repository in the store.
  const notifier = createNotifier({
    log: log.child({ component: 'notify' }),
    overrides: opts.notifyOverrides,
    stateStore: {
      get: (repoKey) => {
        const state = store.getRepository(repoKey)?.notifyState;
        return isNotifyState(state) ? state : undefined;
      },
      set: (repoKey, state) => store.updateRepositoryState(repoKey, { notifyState: state }),
    },
  });

  return {
    pool,
    runTask: createTaskRunner(pool),
    docker,
    verify,
    notify: (repo, notice) => notifyNotice(notifier, repo, notice),
  };
}
