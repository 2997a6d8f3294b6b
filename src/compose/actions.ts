/**
 * @module Engine calls for the service actions and the container views of the API, by compose labels (dockerode):
 * list a project's containers, count every project's containers with one list call, restart/stop/start one
 * service's containers, and remove a project's containers (never its volumes, networks' data or files).
 */
import type Dockerode from 'dockerode';
import type { ContainerCounts, ContainerInfo } from '../domain/types.ts';
import { PROJECT_LABEL } from './verify.ts';

/** The compose label naming a container's service. */
const SERVICE_LABEL = 'com.docker.compose.service';
/** Seconds the engine waits for a container to stop before killing it (compose's default). */
const STOP_TIMEOUT_SECONDS = 10;

/** Service actions on one compose service. */
export type ServiceAction = 'restart' | 'stop' | 'start';

/** `null` for the engine's zero time (never started). */
function isoOrNull(t: string | undefined): string | null {
  if (!t || t.startsWith('0001-')) return null;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** The containers (running or not) of compose project `project`, optionally of one service, sorted by name. */
async function projectContainers(
  docker: Dockerode,
  project: string,
  service?: string,
): Promise<Dockerode.ContainerInfo[]> {
  const label = [`${PROJECT_LABEL}=${project}`, ...(service === undefined ? [] : [`${SERVICE_LABEL}=${service}`])];
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list.sort((a, b) => (a.Names[0] ?? '').localeCompare(b.Names[0] ?? ''));
}

/**
 * The containers of a compose project as the API lists them. One inspect per container gives the start time and
 * health; a container removed in between is left out.
 */
export async function listContainers(docker: Dockerode, project: string): Promise<ContainerInfo[]> {
  const list = await projectContainers(docker, project);
  const infos = await Promise.all(
    list.map(async (c): Promise<ContainerInfo | null> => {
      try {
        const i = await docker.getContainer(c.Id).inspect();
        return {
          id: c.Id,
          name: (c.Names[0] ?? i.Name).replace(/^\//, ''),
          service: c.Labels?.[SERVICE_LABEL] ?? '',
          state: i.State.Status,
          health: i.State.Health?.Status ?? null,
          image: c.Image,
          startedAt: isoOrNull(i.State.StartedAt),
        };
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null;
        throw err;
      }
    }),
  );
  return infos.filter((c): c is ContainerInfo => c !== null);
}

/** Counts per compose project of every labelled container of one engine: ONE list call. */
export async function countProjectContainers(docker: Dockerode): Promise<Map<string, ContainerCounts>> {
  const list = await docker.listContainers({ all: true, filters: { label: [PROJECT_LABEL] } });
  const counts = new Map<string, ContainerCounts>();
  for (const c of list) {
    const project = c.Labels?.[PROJECT_LABEL];
    if (!project) continue;
    const n = counts.get(project) ?? { total: 0, running: 0, unhealthy: 0 };
    n.total++;
    if (c.State === 'running') n.running++;
    if (/\(unhealthy\)/.test(c.Status ?? '')) n.unhealthy++;
    counts.set(project, n);
  }
  return counts;
}

/**
 * Restarts, stops or starts the containers of one service. Returns how many containers it acted on: 0 means the
 * service has no container (the caller answers 404). A container already in the wanted state is left as it is.
 */
export async function serviceAction(
  docker: Dockerode,
  project: string,
  service: string,
  action: ServiceAction,
): Promise<number> {
  const list = await projectContainers(docker, project, service);
  for (const c of list) {
    const container = docker.getContainer(c.Id);
    if (action === 'restart') await container.restart({ t: STOP_TIMEOUT_SECONDS });
    else if (action === 'stop') {
      if (c.State === 'running' || c.State === 'restarting' || c.State === 'paused')
        await ignoreNotModified(container.stop({ t: STOP_TIMEOUT_SECONDS }));
    } else if (c.State !== 'running') await ignoreNotModified(container.start());
  }
  return list.length;
}

/** The compose services that have at least one container in the project. */
export async function projectServices(docker: Dockerode, project: string): Promise<Set<string>> {
  const list = await projectContainers(docker, project);
  return new Set(list.map((c) => c.Labels?.[SERVICE_LABEL] ?? '').filter((s) => s !== ''));
}

/**
 * Stops and removes every container of a compose project. Volumes (named and anonymous) are kept: the remove call
 * never asks for them (`v: false`), and no file is touched. Returns the number of containers removed.
 */
export async function removeProjectContainers(docker: Dockerode, project: string): Promise<number> {
  const list = await projectContainers(docker, project);
  for (const c of list) {
    const container = docker.getContainer(c.Id);
    if (c.State === 'running' || c.State === 'restarting' || c.State === 'paused')
      await ignoreNotModified(container.stop({ t: STOP_TIMEOUT_SECONDS }));
    try {
      await container.remove({ v: false, force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
  return list.length;
}

/** The engine answers 304 for a container already started/stopped: not a failure. */
async function ignoreNotModified(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 304) throw err;
  }
}
