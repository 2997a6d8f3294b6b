/**
 * @module Boot step 3, the effects the deploy actors call out to: the worker pool and its task runner, one Docker
 * engine (client + CLI environment, compose/engine.ts) per engine settings, per-engine health, container
 * verification, and notifications (de-duplication state kept in the store).
 */
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { RepoConfig, RepoEngine } from '../config/schema.ts';
import type { Settings } from '../config/settings.ts';
import type { Store } from '../store/index.ts';
import type { VerifyResult } from '../domain/types.ts';
import type { EngineStatus } from '../http/ports.ts';
import { createPool, createTaskRunner } from '../workers/pool.ts';
import type { RunTask } from '../workers/types.ts';
import { createDocker, pingDocker, verifyProject, verifyStack } from '../compose/verify.ts';
import { engineId, engineKey, maskEngineHost, prepareEngine, type Engine } from '../compose/engine.ts';
import { maskSecrets } from '../lib/redact.ts';
import {
  createNotifier,
  isNotifyState,
  notifyImageNotice,
  notifyNotice,
  type DeployNotice,
  type ImageNotice,
  type NotifyResult,
} from '../notify/index.ts';

export interface Effects {
  pool: Piscina;
  runTask: RunTask;
  /**
   * The client for an engine (a repository's `engine` settings or a bare DOCKER_HOST; default: the process's own
   * engine), created once per engine. Throws an EngineError when the settings cannot work.
   */
  docker(engine?: RepoEngine | string): Dockerode;
  /** The prepared engine (CLI environment, masked label), once per engine. Throws like {@link Effects.docker}. */
  engine(engine?: RepoEngine | string): Engine;
  /** The clients of every engine the repositories use, the default engine first (unusable settings are skipped). */
  dockers(repos: readonly RepoConfig[]): Dockerode[];
  /** Pings every engine the repositories use (in parallel; 2 s each, 10 s over ssh): one entry per engine. */
  engineHealth(repos: readonly RepoConfig[]): Promise<EngineStatus[]>;
  verify(repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult>;
  notify(repo: RepoConfig, notice: DeployNotice): Promise<NotifyResult[]>;
  /** The image watch's notices (update available, check failed): sent as they come, no de-duplication here. */
  notifyImage(repo: RepoConfig, notice: ImageNotice): Promise<NotifyResult[]>;
}

export function createEffects(opts: {
  settings: Settings;
  store: Store;
  log: Logger;
  notifyOverrides?: Record<string, string>;
}): Effects {
  const { settings, store, log } = opts;
  const pool = createPool({ maxThreads: settings.workers, log: log.child({ component: 'pool' }) });

  // TLS copies and ssh wrappers live in a private directory under the data path (0700, files 0600).
  const stateDir = path.join(settings.dataPath, 'engines');
  const engines = new Map<string, { engine: Engine; docker: Dockerode }>();
  const entry = (e?: RepoEngine | string): { engine: Engine; docker: Dockerode } => {
    const spec = typeof e === 'string' ? { host: e } : e;
    const k = engineKey(spec);
    let hit = engines.get(k);
    if (!hit) {
      const engine = prepareEngine(spec, { stateDir });
      engines.set(k, (hit = { engine, docker: createDocker(engine) }));
    }
    return hit;
  };
  const docker = (e?: RepoEngine | string): Dockerode => entry(e).docker;

  const dockers = (repos: readonly RepoConfig[]): Dockerode[] => {
    const out = new Set<Dockerode>([docker()]);
    for (const r of repos) {
      try {
        out.add(docker(r.engine));
      } catch {
        // Settings that cannot work have no containers to show.
      }
    }
    return [...out];
  };

  const engineHealth = async (repos: readonly RepoConfig[]): Promise<EngineStatus[]> => {
    const byKey = new Map<string, { spec?: RepoEngine; count: number }>();
    if (repos.length === 0) byKey.set(engineKey(undefined), { count: 0 });
    for (const r of repos) {
      const k = engineKey(r.engine);
      const cur = byKey.get(k);
      if (cur) cur.count++;
      else byKey.set(k, { spec: r.engine, count: 1 });
    }
    return Promise.all(
      [...byKey.values()].map(async ({ spec, count }): Promise<EngineStatus> => {
        let label = spec?.host ?? spec?.context ?? 'default';
        let id = engineId(spec);
        try {
          const e = entry(spec);
          label = e.engine.label;
          id = e.engine.id;
          // Over ssh every request is a new ssh session running `docker system dial-stdio`: allow it more time.
          const timeoutMs = label.startsWith('ssh://') ? 10_000 : 2_000;
          await pingDocker(e.docker, timeoutMs);
          // dockerode hands `abortSignal` to the request; its type declarations leave version's options out.
          const version = e.docker.version.bind(e.docker) as (o: { abortSignal: AbortSignal }) => Promise<unknown>;
          const v = (await version({ abortSignal: AbortSignal.timeout(timeoutMs) })) as { Version?: string };
          return { host: label, ok: true, version: v.Version ?? null, repositories: count, id };
        } catch (err) {
          const message = maskSecrets((err as Error).message ?? String(err));
          const host = maskEngineHost(label);
          return { host, ok: false, version: null, error: message, repositories: count, id };
        }
      }),
    );
  };

  const verify = async (repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult> => {
    let client: Dockerode;
    try {
      client = docker(repo.engine);
    } catch (err) {
      return { ok: false, code: 'DOCKER_HOST_INVALID', message: maskSecrets((err as Error).message), transient: false };
    }
    // Listing one project's containers (or a stack's services) is cheap: poll often so a healthy deploy is confirmed
    // promptly.
    const common = {
      docker: client,
      timeoutMs: repo.healthcheck.timeout * 1000,
      pollMs: 250,
      url: repo.healthcheck.url,
      retries: repo.healthcheck.retries,
      intervalMs: repo.healthcheck.interval * 1000,
      signal,
    };
    if (repo.mode === 'swarm') return verifyStack({ ...common, stack: repo.composeProject });
    const r = await verifyProject({ ...common, project: repo.composeProject });
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
    engine: (e) => entry(e).engine,
    engineHealth,
    dockers,
    verify,
    notify: (repo, notice) => notifyNotice(notifier, repo, notice),
    notifyImage: (repo, notice) => notifyImageNotice(notifier, repo, notice),
  };
}
