/**
 * @module Boot step 4, the web UI's service port: containers of a repository's compose project, service actions
 * (restart/stop/start/remove, unpin) recorded in the `actions` table and announced as `action` events, and the
 * container counts of RepoStatus from one cached engine list per Docker host.
 *
 * An engine action runs inside `supervisor.exclusive`: refused while the repository deploys, and a deploy that
 * starts meanwhile waits for its slot until the action is done.
 *
 * A `mode: swarm` repository goes through the service API of its engine (a Swarm manager) instead: its stack's
 * services and tasks (label `com.docker.stack.namespace`), service logs, restart = `docker service update --force`,
 * stop = scale to 0 (the replicas before are kept in a service label), start = scale back to them (refused when
 * unknown), remove = remove the stack's services (networks, configs, secrets and volumes stay).
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { RepoConfig, RepoEngine } from '../config/schema.ts';
import { engineKey } from '../compose/engine.ts';
import type { ActionRecord, ContainerCounts, ServiceActionName } from '../domain/types.ts';
import { NotFoundError } from '../errors.ts';
import type { EngineAction, ServicePort } from '../http/ports.ts';
import { maskSecrets } from '../lib/redact.ts';
import type { Store } from '../store/index.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import {
  countProjectContainers,
  listContainers,
  projectServices,
  removeProjectContainers,
  serviceAction,
} from '../compose/actions.ts';
import { followLogs, readLogs } from '../compose/logs.ts';
import {
  listStackServices,
  removeStackServices,
  restartService,
  scaleService,
  stackService,
  countStackTasks,
} from '../compose/swarm.ts';

/** How long one engine list answers RepoStatus.containers. */
const COUNTS_TTL_MS = 3_000;

/** What the service port needs from the supervisor. */
export type ServiceSupervisor = Pick<
  Supervisor,
  'repoConfig' | 'exclusive' | 'unpin' | 'announce' | 'subscribe' | 'useContainerCounts'
>;

interface CountsEntry {
  at: number;
  value: Map<string, ContainerCounts> | null;
  inflight: Promise<void> | null;
}

/** One engine list per engine, reused for COUNTS_TTL_MS: a read never waits for the engine (null until the first). */
function countsCache(load: (host: string) => Promise<Map<string, ContainerCounts>>, log: Logger) {
  const entries = new Map<string, CountsEntry>();
  const refresh = (host: string): Promise<void> => {
    let entry = entries.get(host);
    if (!entry) entries.set(host, (entry = { at: 0, value: null, inflight: null }));
    if (entry.inflight) return entry.inflight;
    const e = entry;
    e.inflight = load(host)
      .then(
        (value) => {
          e.value = value;
        },
        (err: unknown) => {
          log.debug({ err: { message: maskSecrets((err as Error).message) } }, 'container counts unavailable');
          e.value = null;
        },
      )
      .finally(() => {
        e.at = Date.now();
        e.inflight = null;
      });
    return e.inflight;
  };
  return {
    refresh,
    /** The cached list of `host` (starting a refresh when it is older than the TTL). */
    read(host: string): Map<string, ContainerCounts> | null {
      const entry = entries.get(host);
      if (!entry || Date.now() - entry.at > COUNTS_TTL_MS) void refresh(host);
      return entry?.value ?? null;
    },
    hosts: () => entries.keys(),
  };
}

/** The ServicePort over the supervisor, the store and the engines; also feeds RepoStatus.containers. */
export function createServices(deps: {
  supervisor: ServiceSupervisor;
  store: Pick<Store, 'recordAction' | 'listActions'>;
  /** The client of an engine: a repository's engine settings, a DOCKER_HOST, or the default engine. */
  docker(engine?: RepoEngine | string): Dockerode;
  log: Logger;
}): ServicePort & { warm(): Promise<void> } {
  const { supervisor, store, log } = deps;
  // Count keys → the engine they name (a repository's engine settings, or its DOCKER_HOST; '' the default engine).
  const engines = new Map<string, RepoEngine | string>([['', '']]);
  const engineOf = (repo: RepoConfig): RepoEngine | string => repo.engine ?? repo.dockerHost ?? '';
  const keyOf = (e: RepoEngine | string): string => (typeof e === 'string' ? e : engineKey(e));
  const clientOf = (host: string) => deps.docker(engines.get(host) || undefined);
  // Compose projects count their containers; a swarm stack counts its tasks (on every node of the swarm).
  const containerCounts = countsCache((host) => countProjectContainers(clientOf(host)), log);
  const stackCounts = countsCache((host) => countStackTasks(clientOf(host)), log);
  const countsOf = (repo: RepoConfig): ContainerCounts | null => {
    const engine = engineOf(repo);
    const host = keyOf(engine);
    engines.set(host, engine);
    const value = (repo.mode === 'swarm' ? stackCounts : containerCounts).read(host);
    if (!value) return null;
    return value.get(repo.composeProject) ?? { total: 0, running: 0, unhealthy: 0 };
  };
  supervisor.useContainerCounts(countsOf);
  // What changes containers makes the next read fresh.
  supervisor.subscribe((e) => {
    if (e.type !== 'action' && e.type !== 'deployment.finished') return;
    for (const cache of [containerCounts, stackCounts]) for (const host of cache.hosts()) void cache.refresh(host);
  });

  const repoOf = (key: string): RepoConfig => {
    const repo = supervisor.repoConfig(key);
    if (!repo) throw new NotFoundError(`repository ${key} is not active`);
    return repo;
  };
  const record = (
    repo: RepoConfig,
    action: ServiceActionName,
    service: string | null,
    startedAt: string,
    error: string | null,
    triggeredBy: string | null,
  ): ActionRecord => {
    const row = store.recordAction({
      repoKey: repo.key,
      action,
      service,
      status: error === null ? 'success' : 'failed',
      error,
      triggeredBy,
      startedAt,
      finishedAt: new Date().toISOString(),
    });
    supervisor.announce({
      type: 'action',
      repoKey: repo.key,
      actionId: row.id,
      action,
      service,
      status: row.status,
      triggeredBy,
      at: row.finishedAt,
    });
    log.info({ repo: repo.key, action, service, status: row.status, by: triggeredBy }, `service action ${action}`);
    return row;
  };

  return {
    warm: async () => {
      await containerCounts.refresh('');
    },
    containers: (key) => {
      const repo = repoOf(key);
      return listContainers(deps.docker(engineOf(repo)), repo.composeProject);
    },
    async act(key, action: EngineAction, service, opts) {
      const repo = repoOf(key);
      const docker = deps.docker(engineOf(repo));
      if (repo.mode === 'swarm') return swarmAct(repo, docker, action, service, opts.triggeredBy ?? null);
      const r = await supervisor.exclusive(key, async () => {
        if (service !== null && !(await projectServices(docker, repo.composeProject)).has(service)) return null;
        const startedAt = new Date().toISOString();
        let error: string | null = null;
        try {
          if (action === 'remove') await removeProjectContainers(docker, repo.composeProject);
          else await serviceAction(docker, repo.composeProject, service ?? '', action);
        } catch (err) {
          error = maskSecrets(err instanceof Error ? err.message : String(err));
        }
        return record(repo, action, service, startedAt, error, opts.triggeredBy ?? null);
      });
      if (r.busy) return { ok: false, reason: 'busy' };
      if (r.value === null) return { ok: false, reason: 'unknown-service' };
      return { ok: true, action: r.value };
    },
    unpin(key, opts) {
      const repo = repoOf(key);
      const startedAt = new Date().toISOString();
      supervisor.unpin(key, opts);
      return record(repo, 'unpin', null, startedAt, null, opts.triggeredBy ?? null);
    },
    listActions: (repoId, q) => store.listActions(repoId, q),
    async stackServices(key) {
      const repo = repoOf(key);
      if (repo.mode !== 'swarm') return null;
      return listStackServices(deps.docker(engineOf(repo)), repo.composeProject);
    },
    async serviceLogs(key, service, q, follow) {
      const repo = repoOf(key);
      if (repo.mode !== 'swarm') return null;
      const docker = deps.docker(engineOf(repo));
      const svc = await stackService(docker, repo.composeProject, `${repo.composeProject}_${service}`);
      if (!svc) return null;
      const logPath = `/services/${encodeURIComponent(svc.id)}/logs?`;
      return follow ? followLogs(docker, logPath, svc.tty, q, follow) : readLogs(docker, logPath, svc.tty, q);
    },
  };

  /** An action on a swarm repository's stack, through the service API (see the module comment). */
  async function swarmAct(
    repo: RepoConfig,
    docker: Dockerode,
    action: EngineAction,
    service: string | null,
    triggeredBy: string | null,
  ): ReturnType<ServicePort['act']> {
    const stack = repo.composeProject;
    const name = `${stack}_${service ?? ''}`;
    const r = await supervisor.exclusive(repo.key, async () => {
      if (service !== null && !(await listStackServices(docker, stack)).some((s) => s.service === service)) return null;
      const startedAt = new Date().toISOString();
      let error: string | null = null;
      let refused: string | null = null;
      try {
        if (action === 'remove') await removeStackServices(docker, stack);
        else if (action === 'restart') await restartService(docker, stack, name);
        else {
          const done = await scaleService(docker, stack, name, action);
          if (done === 'not-replicated')
            refused = `service "${service}" is not replicated (global or job mode): it cannot be scaled to 0 and back`;
          else if (done === 'unknown-replicas')
            refused = `service "${service}" has 0 replicas and Shiparr did not stop it, so the count to start is unknown; deploy the repository to apply its compose file's replicas`;
        }
      } catch (err) {
        error = maskSecrets(err instanceof Error ? err.message : String(err));
      }
      if (refused !== null) return { refused };
      return { row: record(repo, action, service, startedAt, error, triggeredBy) };
    });
    if (r.busy) return { ok: false, reason: 'busy' };
    if (r.value === null) return { ok: false, reason: 'unknown-service' };
    const { refused, row } = r.value;
    if (refused !== undefined) return { ok: false, reason: 'refused', message: refused };
    return { ok: true, action: row };
  }
}
