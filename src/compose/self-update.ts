/**
 * @module Self-update ("uroboros"): Shiparr deploying the compose project it runs in. Compose replaces our own
 * container mid-deploy, so the deployment can never be finished by the process that started it. We find our own
 * container id (cgroup, mountinfo, or HOSTNAME) and its compose project label; deployments of that project are
 * flagged `selfUpdate` before compose runs (the store then leaves them open at shutdown/boot instead of marking
 * them interrupted), compose runs in a helper container that outlives ours (self-update-helper.ts), and the next
 * boot finalises them with the helper's result: success when our (new) container is running and not
 * unhealthy and the checkout is at the deployment's commit, else failed with the reason.
 */
import { readFile } from 'node:fs/promises';
import fs from 'node:fs';
import git from 'isomorphic-git';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { DeploymentReason } from '../domain/types.ts';
import { readHelperResult, removeHelperFiles, type HelperSelf } from './self-update-helper.ts';

/** The reason of a self-update row that has none: the actor gives every row it opens one, older rows had none. */
const SELF_UPDATE_REASON: DeploymentReason = {
  kind: 'self-update',
  summary: 'self-update of the compose project Shiparr runs in, finalised at boot',
};

const HEX64 = '[0-9a-f]{64}';
/** cgroup v1/v2 paths of Docker containers: `/docker/<id>` (cgroupfs driver) or `docker-<id>.scope` (systemd driver). */
const CGROUP_PATTERNS = [new RegExp(`/docker/(${HEX64})(?:/|$)`), new RegExp(`/docker-(${HEX64})\\.scope(?:/|$)`)];
/** Bind mounts Docker makes for every container (/etc/hostname, /etc/hosts, /etc/resolv.conf) name its directory. */
const MOUNTINFO_PATTERN = new RegExp(`/docker/containers/(${HEX64})/`);
const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';

/** The container id found in /proc/self/cgroup text (v1 or v2 format), or null. */
export function containerIdFromCgroup(text: string): string | null {
  for (const line of text.split('\n')) {
    // hierarchy-id:controllers:path — the path may itself contain ':' in theory, so keep everything after the 2nd.
    const p = line.split(':').slice(2).join(':');
    for (const re of CGROUP_PATTERNS) {
      const m = re.exec(p);
      if (m?.[1]) return m[1];
    }
  }
  return null;
}

/**
 * The container id found in /proc/self/mountinfo text: only the mounts Docker makes at /etc/hostname, /etc/hosts and
 * /etc/resolv.conf count. (A Docker HOST's mountinfo lists `/var/lib/docker/containers/<id>/mounts/shm` of every
 * running container; those must not make the host believe it is one of them.)
 */
export function containerIdFromMountinfo(text: string): string | null {
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options …
    const [, , , root, mountPoint] = line.split(' ');
    if (!root || !mountPoint || !/^\/etc\/(hostname|hosts|resolv\.conf)$/.test(mountPoint)) continue;
    const m = MOUNTINFO_PATTERN.exec(root);
    if (m?.[1]) return m[1];
  }
  return null;
}

/**
 * Our own container id (full 64 hex, or the 12-hex prefix Docker uses as the default HOSTNAME), or null when we do
 * not seem to run in a Docker container. Sources in order: cgroup, mountinfo, HOSTNAME.
 */
export function detectContainerId(src: {
  cgroup?: string | null;
  mountinfo?: string | null;
  hostname?: string | null;
}): string | null {
  const fromCgroup = src.cgroup ? containerIdFromCgroup(src.cgroup) : null;
  if (fromCgroup) return fromCgroup;
  const fromMounts = src.mountinfo ? containerIdFromMountinfo(src.mountinfo) : null;
  if (fromMounts) return fromMounts;
  const host = src.hostname?.trim() ?? '';
  return /^[0-9a-f]{12}$/.test(host) ? host : null;
}

/** Reads the detection sources of the current process (missing files are fine: not Linux, or no /proc). */
async function readContainerId(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const read = (p: string) => readFile(p, 'utf8').catch(() => null);
  const [cgroup, mountinfo] = await Promise.all([read('/proc/self/cgroup'), read('/proc/self/mountinfo')]);
  return detectContainerId({ cgroup, mountinfo, hostname: env['HOSTNAME'] ?? null });
}

export interface SelfInfo extends HelperSelf {
  /** Full container id as the engine reports it. */
  containerId: string;
  /** Value of the `com.docker.compose.project` label, or null when the container was not started by compose. */
  composeProject: string | null;
}

/** What detection and finalisation need from the engine (a Dockerode fits). */
export interface SelfDocker {
  getContainer(id: string): { inspect(): Promise<ContainerInspect> };
}

interface ContainerInspect {
  Id: string;
  Image?: string;
  Config?: { Labels?: Record<string, string> | null; Env?: string[] | null };
  HostConfig?: { GroupAdd?: string[] | null; NetworkMode?: string };
  State?: { Running?: boolean; Status?: string; Health?: { Status?: string } | null };
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms).unref();
    }),
  ]);

/**
 * Finds our own container and its compose project through the engine. null when we are not in a container, or the
 * engine does not know the id (another engine, or unreachable): then nothing is treated as a self-update.
 */
export async function detectSelf(opts: {
  docker: SelfDocker | Dockerode;
  log: Logger;
  containerId?: string | null;
  timeoutMs?: number;
}): Promise<SelfInfo | null> {
  const id = opts.containerId === undefined ? await readContainerId() : opts.containerId;
  if (!id) return null;
  try {
    const info = await withTimeout(
      (opts.docker as SelfDocker).getContainer(id).inspect(),
      opts.timeoutMs ?? 5_000,
      'container inspect',
    );
    const composeProject = info.Config?.Labels?.[COMPOSE_PROJECT_LABEL] ?? null;
    opts.log.info({ containerId: info.Id.slice(0, 12), composeProject }, 'running in a container');
    return {
      containerId: info.Id,
      composeProject,
      // What a self-update helper copies (self-update-helper.ts).
      image: info.Image,
      groupAdd: info.HostConfig?.GroupAdd ?? [],
      networkMode: info.HostConfig?.NetworkMode,
      envNames: (info.Config?.Env ?? []).map((e) => e.split('=')[0] ?? '').filter(Boolean),
    };
  } catch (err) {
    opts.log.info(
      { containerId: id.slice(0, 12), err: (err as Error).message },
      'own container not found on the engine: self-update detection off',
    );
    return null;
  }
}

/** The `isSelf(composeProject)` predicate the actors use to flag deployments before compose runs. */
export function selfMatcher(self: SelfInfo | null): (composeProject: string) => boolean {
  const mine = self?.composeProject ?? null;
  return (composeProject) => mine !== null && composeProject === mine;
}

/** The store methods finalisation uses. */
export interface SelfUpdateStore {
  openSelfUpdates(): { id: number; repoKey: string; commit: string | null; reason?: DeploymentReason | null }[];
  /** Gives a row without a reason (written before reasons existed) the `self-update` one. */
  updateDeployment?(id: number, patch: { reason: DeploymentReason }): void;
  getRepository(key: string): { localPath: string; lastSeenCommit: string | null } | undefined;
  appendDeploymentLog(id: number, text: string): void;
  finishDeployment(
    id: number,
    r: { status: 'success' | 'failed'; stage?: string | null; error?: string | null },
  ): unknown;
}

/** Commit checked out at `dir` (HEAD), or null when there is no readable checkout. */
async function checkoutHead(dir: string): Promise<string | null> {
  try {
    return await git.resolveRef({ fs, dir, ref: 'HEAD' });
  } catch {
    return null;
  }
}

export interface FinaliseResult {
  id: number;
  repoKey: string;
  commit: string | null;
  status: 'success' | 'failed';
  error: string | null;
}

/**
 * Finishes the self-update deployments a previous process left open. Call at boot, before actors start. Never throws
 * for engine or git problems: those make the deployment `failed` with the reason.
 */
export async function finaliseSelfUpdates(opts: {
  store: SelfUpdateStore;
  self: SelfInfo | null;
  docker: SelfDocker | Dockerode;
  log: Logger;
  /** Data directory: where a self-update helper left its compose output (self-update-helper.ts). */
  dataPath?: string;
  /** Test hook: HEAD of a checkout (default: read with isomorphic-git). */
  head?: (dir: string) => Promise<string | null>;
}): Promise<FinaliseResult[]> {
  const open = opts.store.openSelfUpdates();
  if (open.length === 0) return [];
  const head = opts.head ?? checkoutHead;
  let container: { ok: boolean; why: string } | null = null;
  const ownContainer = async (): Promise<{ ok: boolean; why: string }> => {
    if (!opts.self) return { ok: false, why: 'Shiparr is no longer running in a container it can identify' };
    try {
      const info = await withTimeout(
        (opts.docker as SelfDocker).getContainer(opts.self.containerId).inspect(),
        10_000,
        'container inspect',
      );
      const health = info.State?.Health?.Status;
      if (!info.State?.Running) return { ok: false, why: `own container is ${info.State?.Status ?? 'not running'}` };
      // Just (re)started: "starting" is expected; only an explicit "unhealthy" verdict fails the update.
      if (health === 'unhealthy') return { ok: false, why: 'own container is unhealthy' };
      return { ok: true, why: `own container running${health ? ` (${health})` : ''}` };
    } catch (err) {
      return { ok: false, why: `cannot inspect own container: ${(err as Error).message}` };
    }
  };

  const results: FinaliseResult[] = [];
  for (const d of open) {
    container ??= await ownContainer();
    const repo = opts.store.getRepository(d.repoKey);
    const checkedOut = repo ? await head(repo.localPath) : null;
    const current = checkedOut ?? repo?.lastSeenCommit ?? null;
    let error: string | null = null;
    const helper = opts.dataPath ? await readHelperResult(opts.dataPath, d.id) : null;
    if (helper?.output)
      opts.store.appendDeploymentLog(
        d.id,
        `[${new Date().toISOString()}] self-update helper (compose output):\n${helper.output.trimEnd()}\n`,
      );
    const lastLine = helper?.output.trim().split('\n').at(-1) ?? '';
    if (helper && helper.exitCode !== null && helper.exitCode !== 0) {
      error = `self-update compose up failed (exit ${helper.exitCode}): ${lastLine || 'no output'}`;
    } else if (!container.ok) error = `self-update could not be confirmed: ${container.why}`;
    else if (!d.commit) error = 'self-update could not be confirmed: the deployment has no commit';
    else if (current !== d.commit) {
      error = `self-update could not be confirmed: checkout is at ${current ? current.slice(0, 12) : 'no commit'}, expected ${d.commit.slice(0, 12)}`;
    }
    const status = error ? 'failed' : 'success';
    if (!d.reason?.summary) opts.store.updateDeployment?.(d.id, { reason: SELF_UPDATE_REASON });
    opts.store.appendDeploymentLog(
      d.id,
      `[${new Date().toISOString()}] self-update finalised at boot: ${status}${error ? ` — ${error}` : ` (${container.why})`}\n`,
    );
    const composeFailed = helper !== null && helper.exitCode !== null && helper.exitCode !== 0;
    opts.store.finishDeployment(d.id, {
      status,
      stage: composeFailed ? 'applying' : 'verifying',
      error: !error
        ? null
        : composeFailed
          ? `applying: COMPOSE_UP_FAILED: ${error}`
          : `verifying: SELF_UPDATE_UNCONFIRMED: ${error}`,
    });
    if (error) opts.log.error({ deploymentId: d.id, repo: d.repoKey }, error);
    else
      opts.log.info({ deploymentId: d.id, repo: d.repoKey, commit: d.commit?.slice(0, 12) }, 'self-update succeeded');
    if (opts.dataPath) await removeHelperFiles(opts.dataPath, d.id).catch(() => undefined);
    results.push({ id: d.id, repoKey: d.repoKey, commit: d.commit, status, error });
  }
  return results;
}
