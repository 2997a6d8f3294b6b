/**
 * @module Post-deploy verification on the main thread (dockerode): every container of the compose project must be
 * running (and healthy where it has a healthcheck) or have exited 0, then an optional HTTP URL must answer 2xx.
 * Fails early on `unhealthy`, a non-zero exit or a restart loop instead of waiting for the timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import type { VerifyResult } from '../domain/types.ts';
import { prepareEngine, type Engine } from './engine.ts';
import { maskSecrets } from '../lib/redact.ts';
import { describeService, watchStack } from './swarm.ts';

/** Label compose puts on every container of a project. */
export const PROJECT_LABEL = 'com.docker.compose.project';
/** Label naming the compose service of a container. */
const SERVICE_LABEL = 'com.docker.compose.service';

/** Per-request socket timeout: a hung engine must not hang verification or the logs endpoint forever. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Pings the engine; after `timeoutMs` the request is aborted and this rejects with "docker ping timed out" (the
 * health report's engine check).
 */
export async function pingDocker(docker: Dockerode, timeoutMs: number): Promise<void> {
  // dockerode hands `abortSignal` to the request; its type declarations leave ping's options out.
  const ping = docker.ping.bind(docker) as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
  const abortSignal = AbortSignal.timeout(timeoutMs);
  try {
    await ping({ abortSignal });
  } catch (err) {
    throw abortSignal.aborted ? new Error('docker ping timed out') : err;
  }
}

/**
 * Dockerode client for an engine prepared by compose/engine.ts, or for a bare DOCKER_HOST value (`unix:///path`,
 * `tcp://host:port` (TLS when the port is 2376), `http(s)://host:port`, `ssh://user@host[:port]` checked against
 * ~/.ssh/known_hosts). Without a value, docker-modem's defaults apply (DOCKER_HOST, DOCKER_TLS_VERIFY and
 * DOCKER_CERT_PATH from the environment, else the local socket). Throws an EngineError for unusable values.
 */
export function createDocker(engine?: string | Pick<Engine, 'dockerode'>): Dockerode {
  if (!engine) return new Dockerode({ timeout: REQUEST_TIMEOUT_MS });
  return new Dockerode(typeof engine === 'string' ? prepareEngine({ host: engine }).dockerode : engine.dockerode);
}

/** One container of the project as verification saw it last. */
interface ContainerSummary {
  id: string;
  /** Container name without the leading slash. */
  name: string;
  service: string;
  /** created | running | restarting | exited | paused | dead | removing */
  state: string;
  /** healthy | unhealthy | starting | '' (no healthcheck) */
  health: string;
  exitCode: number;
  restartCount: number;
  /** When the container last started (ms since epoch; 0 when never started). */
  startedAt: number;
}

export interface VerifyOptions {
  docker: Dockerode;
  project: string;
  /** Budget for the containers to become ready. */
  timeoutMs: number;
  /** Poll period (default 1 s). */
  pollMs?: number;
  /**
   * How long a container without a healthcheck must have been running to count as ready (default
   * min(3 s, timeoutMs/2)): without it, a service that crashes a second after start would pass verification.
   */
  stableMs?: number;
  /** Optional URL that must answer 2xx once the containers are ready. */
  url?: string;
  /** Attempts for the URL check (default 5). */
  retries?: number;
  /** Pause between URL attempts (default 5 s); also the per-request timeout (1-30 s). */
  intervalMs?: number;
  signal?: AbortSignal;
}

/** The domain VerifyResult, plus the containers as last seen (for logs and tests). */
export type ProjectVerifyResult = VerifyResult & { containers: ContainerSummary[] };

type Verdict = 'ready' | 'pending' | { code: string; why: string };

/** Container names whose RestartCount grew by this much during verification are in a restart loop. */
const RESTART_LOOP_RESTARTS = 2;
/** …or that were seen in state `restarting` for this many seconds (counted in polls × poll interval). */
const RESTART_LOOP_POLLS = 2;

/**
 * Waits until every container of `project` is ready (running and, if it has a healthcheck, healthy; or exited 0),
 * then checks `url`. Never rejects for engine or container problems: they come back as `{ ok:false }`.
 * Codes: VERIFY_NO_CONTAINERS, VERIFY_UNHEALTHY, VERIFY_EXITED, VERIFY_RESTART_LOOP, VERIFY_DEAD, VERIFY_TIMEOUT,
 * VERIFY_URL_FAILED, VERIFY_ABORTED, DOCKER_UNREACHABLE (transient), DOCKER_ERROR (transient).
 */
export async function verifyProject(opts: VerifyOptions): Promise<ProjectVerifyResult> {
  const { docker, project, signal } = opts;
  const pollMs = Math.max(50, opts.pollMs ?? 1_000);
  const stableMs = Math.max(0, opts.stableMs ?? Math.min(3_000, opts.timeoutMs / 2));
  const deadline = Date.now() + opts.timeoutMs;
  const firstRestartCount = new Map<string, number>();
  const restartingPolls = new Map<string, number>();
  let containers: ContainerSummary[] = [];
  const fail = (code: string, message: string, transient = false): ProjectVerifyResult => ({
    ok: false,
    code,
    message,
    transient,
    containers,
  });

  for (;;) {
    if (signal?.aborted) return fail('VERIFY_ABORTED', 'verification aborted', true);
    try {
      containers = await listProject(docker, project, signal);
    } catch (err) {
      if (signal?.aborted) return fail('VERIFY_ABORTED', 'verification aborted', true);
      const e = engineFailure(err);
      return fail(e.code, e.message, e.transient);
    }
    if (containers.length === 0) {
      return fail('VERIFY_NO_CONTAINERS', `no containers found for compose project "${project}"`);
    }

    const pending: ContainerSummary[] = [];
    for (const c of containers) {
      const first = firstRestartCount.get(c.id);
      if (first === undefined) firstRestartCount.set(c.id, c.restartCount);
      if (c.state === 'restarting') restartingPolls.set(c.id, (restartingPolls.get(c.id) ?? 0) + 1);
      // "Restarting on two polls" means about two seconds of restarting, whatever the poll interval.
      const restartingSeconds = ((restartingPolls.get(c.id) ?? 0) * pollMs) / 1000;
      const v = judge(c, c.restartCount - (first ?? c.restartCount), Math.floor(restartingSeconds), stableMs);
      if (v === 'pending') pending.push(c);
      else if (v !== 'ready') return fail(v.code, `${v.why}: ${describe(c)}`);
    }
    if (pending.length === 0) break;

    const left = deadline - Date.now();
    if (left <= 0) {
      return fail(
        'VERIFY_TIMEOUT',
        `containers not ready after ${Math.round(opts.timeoutMs / 1000)} s: ${pending.map(describe).join(', ')}`,
      );
    }
    try {
      await sleep(Math.min(pollMs, left), undefined, { signal });
    } catch {
      return fail('VERIFY_ABORTED', 'verification aborted', true);
    }
  }

  if (opts.url) {
    const r = await checkUrl(opts.url, opts.retries ?? 5, opts.intervalMs ?? 5_000, signal);
    if (!r.ok) return fail(r.code, r.message);
  }
  return { ok: true, summary: `${containers.length} container(s) running/healthy`, containers };
}

function judge(c: ContainerSummary, restartsSinceStart: number, restartingSeconds: number, stableMs: number): Verdict {
  if (restartsSinceStart >= RESTART_LOOP_RESTARTS || restartingSeconds >= RESTART_LOOP_POLLS) {
    return { code: 'VERIFY_RESTART_LOOP', why: 'container is restarting repeatedly' };
  }
  switch (c.state) {
    case 'running':
      if (c.health === 'unhealthy') return { code: 'VERIFY_UNHEALTHY', why: 'container is unhealthy' };
      if (c.health === 'healthy') return 'ready';
      // No healthcheck: running for a while is the best evidence we get.
      if (c.health === '') return Date.now() - c.startedAt >= stableMs ? 'ready' : 'pending';
      return 'pending';
    case 'exited':
      // Exit 0 = one-shot job (migrations, init) that did its work.
      return c.exitCode === 0 ? 'ready' : { code: 'VERIFY_EXITED', why: `container exited with code ${c.exitCode}` };
    case 'dead':
      return { code: 'VERIFY_DEAD', why: 'container is dead' };
    default:
      // created, restarting (first sighting), paused, removing: give it until the timeout.
      return 'pending';
  }
}

function describe(c: ContainerSummary): string {
  const parts = [c.state];
  if (c.health) parts.push(`health ${c.health}`);
  if (c.state === 'exited' || c.state === 'dead') parts.push(`exit code ${c.exitCode}`);
  if (c.restartCount > 0) parts.push(`${c.restartCount} restart(s)`);
  return `${c.name} (${parts.join(', ')})`;
}

/** Lists and inspects every container (running or not) labelled with the project, sorted by name. */
async function listProject(docker: Dockerode, project: string, signal?: AbortSignal): Promise<ContainerSummary[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${PROJECT_LABEL}=${project}`] },
    abortSignal: signal,
  } as Dockerode.ContainerListOptions);
  const out: ContainerSummary[] = [];
  for (const item of list) {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await docker.getContainer(item.Id).inspect({ abortSignal: signal } as Dockerode.ContainerInspectOptions);
    } catch (err) {
      // Removed between list and inspect (compose recreating it): the next poll sees its successor.
      if ((err as { statusCode?: number }).statusCode === 404) continue;
      throw err;
    }
    const s = info.State;
    out.push({
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      service: info.Config.Labels?.[SERVICE_LABEL] ?? '',
      state: s.Restarting ? 'restarting' : s.Status,
      health: s.Health?.Status ?? '',
      exitCode: s.ExitCode,
      restartCount: info.RestartCount ?? 0,
      startedAt: Date.parse(s.StartedAt) || 0,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const UNREACHABLE_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EACCES',
]);

/** Maps a dockerode error to a failure: engine unreachable (socket/network), or an engine-side error. */
function engineFailure(err: unknown): { code: string; message: string; transient: boolean } {
  const e = err as { code?: string; statusCode?: number; message?: string };
  if ((e.code && UNREACHABLE_CODES.has(e.code)) || /timeout/i.test(e.message ?? '')) {
    const hint = e.code === 'EACCES' ? ' (permission denied on the Docker socket)' : '';
    return {
      code: 'DOCKER_UNREACHABLE',
      message: `Docker engine unreachable${hint}: ${maskSecrets(e.message ?? String(err))}`,
      transient: e.code !== 'EACCES',
    };
  }
  return {
    code: 'DOCKER_ERROR',
    message: `Docker engine error${e.statusCode ? ` (HTTP ${e.statusCode})` : ''}: ${maskSecrets(e.message ?? String(err))}`,
    transient: true,
  };
}

/** Most bytes of a health URL's body that are read (the status decides; the body is only drained). */
const HEALTH_BODY_MAX_BYTES = 64 * 1024;

/** Reads up to `max` bytes of `body` (or to its end), then cancels the rest. Never rejects. */
async function drainCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<void> {
  if (!body) return;
  const reader = body.getReader();
  let read = 0;
  try {
    while (read < max) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } catch {
    // A body cut off or timed out: the status already decided.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function checkUrl(
  url: string,
  retries: number,
  intervalMs: number,
  signal?: AbortSignal,
): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
  const attempts = Math.max(1, Math.floor(retries));
  const requestTimeout = Math.min(30_000, Math.max(1_000, intervalMs));
  let last = '';
  for (let i = 1; i <= attempts; i++) {
    if (signal?.aborted) return { ok: false, code: 'VERIFY_ABORTED', message: 'verification aborted' };
    // `timeout` is read again after the await on purpose: Node 20 may garbage-collect a timeout signal that only an
    // AbortSignal.any() composite refers to, and then it never fires (nodejs/node#57736).
    const timeout = AbortSignal.timeout(requestTimeout);
    try {
      const s = signal ? AbortSignal.any([signal, timeout]) : timeout;
      const res = await fetch(url, { signal: s, redirect: 'follow' });
      // Read at most a small part of the body, then cancel it: the connection is released without trusting the
      // service to send a short (or any finite) body.
      await drainCapped(res.body, HEALTH_BODY_MAX_BYTES);
      if (res.status >= 200 && res.status < 300) return { ok: true };
      last = `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      last =
        timeout.aborted || e.name === 'TimeoutError'
          ? `no answer within ${requestTimeout} ms`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
    }
    if (i < attempts) {
      try {
        await sleep(intervalMs, undefined, { signal });
      } catch {
        return { ok: false, code: 'VERIFY_ABORTED', message: 'verification aborted' };
      }
    }
  }
  return {
    ok: false,
    code: 'VERIFY_URL_FAILED',
    message: `${maskSecrets(url)} did not answer 2xx after ${attempts} attempt(s): ${maskSecrets(last)}`,
  };
}

/** Options of {@link verifyStack}: the stack (= compose project name) on a Swarm manager, budget and URL check. */
export interface StackVerifyOptions {
  docker: Dockerode;
  stack: string;
  timeoutMs: number;
  pollMs?: number;
  stableMs?: number;
  url?: string;
  retries?: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Swarm verification (mode `swarm`): waits for every service of the stack to converge ({@link watchStack}: update
 * `completed` or none, desired replicas running the current spec), then checks `url` like {@link verifyProject}.
 * A Swarm-side rollback or pause is a failure (SWARM_ROLLED_BACK, SWARM_UPDATE_PAUSED…), never a success.
 */
export async function verifyStack(opts: StackVerifyOptions): Promise<VerifyResult> {
  const r = await watchStack({
    docker: opts.docker,
    stack: opts.stack,
    timeoutMs: opts.timeoutMs,
    pollMs: opts.pollMs,
    stableMs: opts.stableMs,
    signal: opts.signal,
  });
  if (!r.ok) return { ok: false, code: r.code, message: r.message, transient: r.transient };
  if (opts.url) {
    const u = await checkUrl(opts.url, opts.retries ?? 5, opts.intervalMs ?? 5_000, opts.signal);
    if (!u.ok) return { ok: false, code: u.code, message: u.message, transient: false };
  }
  return {
    ok: true,
    summary: `${r.services.length} service(s) converged: ${r.services.map(describeService).join(', ')}`,
  };
}
