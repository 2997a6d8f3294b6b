/**
 * @module Docker Swarm stacks: `docker stack deploy` of a repository's compose files, the convergence watch over the
 * service API, and service logs / forced restarts for swarm repositories.
 *
 * Deploy: `docker compose -p <stack> -f … config` resolves the project exactly as `compose up` would (the project's
 * `.env` or `--env-file`, `env_file:` entries relative to the compose file, variable interpolation, merged files). Its
 * output is rewritten in memory — keys the stack schema refuses are dropped, and every `configs`/`secrets` entry read
 * from a file gets a content-hashed name — and piped to `docker stack deploy -c -`: the resolved file, which holds the
 * decrypted values, is never written to disk. Swarm configs and secrets are immutable, so a changed file gets a new
 * name and the services using it are rolled.
 *
 * Watch: a service has converged when its update is `completed` (or it has none) and as many tasks as desired run the
 * current spec. `rollback_started`/`rollback_completed` and `paused` are Swarm's own verdict on the update.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { parseDocument } from 'yaml';
import { exec } from '../lib/exec.ts';
import { maskSecrets } from '../lib/redact.ts';
import {
  classifyFailure,
  composeEnv,
  composeNotFound,
  detectCompose,
  type ComposeFailure,
  type EngineEnv,
  type ComposeOutput,
  type ProjectArgs,
} from './cli.ts';
import type { ContainerCounts, SwarmService, SwarmTask } from '../domain/types.ts';
import { demuxLogs } from './logs.ts';

/** Label `docker stack deploy` puts on every service, network, config and secret of a stack. */
const STACK_LABEL = 'com.docker.stack.namespace';

/** Input of the `stack-deploy` worker task. */
export interface StackDeployInput extends ProjectArgs {
  /** Absolute working directory (the repository's compose directory). */
  cwd: string;
  /** Compose files relative to cwd; empty = compose's default lookup. */
  files: string[];
  /** The checkout root: config and secret files must be inside it (default `cwd`). */
  rootDir?: string;
  /** DOCKER_HOST of a Swarm manager; otherwise the daemon's own. */
  dockerHost?: string;
  /** The manager's engine environment (TLS, ssh, contexts: compose/engine.ts); wins over `dockerHost`. */
  engineEnv?: EngineEnv;
  /** `--resolve-image`: always → always, missing → changed, never → never (no registry query). */
  pull: 'always' | 'missing' | 'never';
  /** `--prune`: remove services no longer in the compose files. */
  prune: boolean;
  timeoutMs: number;
  /** Absolute paths of this deploy's decrypted files: their values are masked in the captured output. */
  secretFiles?: string[];
  /**
   * Absolute path of Shiparr's private key for secret names (created, 0600, when missing): a secret's name carries an
   * HMAC of its content under this key, never a plain hash a short secret could be recovered from. Without it, a
   * random key per deploy is used (every deploy then renames the secrets and rolls their services).
   */
  nameKeyFile?: string;
  /** Not clone-safe: only for direct calls (tests, the main thread). */
  signal?: AbortSignal;
}

/** Top-level and per-service keys of `compose config` output that the stack file schema refuses. */
const DROP_TOP = ['name'];
const DROP_SERVICE = ['pull_policy'];
/** The newest stack file format the docker CLI 20.10 knows (configs, secrets, max_replicas_per_node, init). */
const STACK_FILE_VERSION = '3.9';
/** Longest name Swarm accepts for a config or secret. */
const MAX_OBJECT_NAME = 64;

/** A config or secret of the stack that is read from a file: its key, the name it gets, the file. */
interface StackObject {
  kind: 'configs' | 'secrets';
  key: string;
  name: string;
  file: string;
}

/**
 * Rewrites `docker compose config` output into a stack file: drops the keys of {@link DROP_TOP}/{@link DROP_SERVICE}
 * and names every file-based config `<stack>_<key>_<sha256[:12]>` and secret `<stack>_<key>_<hmac[:12]>` (HMAC-SHA256
 * under `secretKey`; a name set in the compose file keeps its own prefix). Config contents are readable through the
 * Swarm API anyway; secret contents are not, so their names never carry a plain hash. `readObject` returns a file's
 * content. Rejects when a file is outside `rootDir`.
 */
export async function rewriteStackFile(
  yamlText: string,
  stack: string,
  rootDir: string,
  secretKey: Buffer,
  readObject: (file: string) => Promise<Buffer> = (f) => readFile(f),
): Promise<{ yaml: string; objects: StackObject[] }> {
  const doc = parseDocument(yamlText);
  const root = doc.toJS() as Record<string, unknown>;
  for (const k of DROP_TOP) doc.delete(k);
  // compose config writes no `version`; the docker CLI before 25 then reads the file as format 1.0 and refuses it.
  if (!doc.has('version')) doc.set('version', STACK_FILE_VERSION);
  const services = (root.services ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(services)) for (const k of DROP_SERVICE) doc.deleteIn(['services', name, k]);
  const objects: StackObject[] = [];
  const realRoot = await realpath(rootDir).catch(() => rootDir);
  for (const kind of ['configs', 'secrets'] as const) {
    const defs = (root[kind] ?? {}) as Record<string, { file?: string; name?: string; external?: unknown }>;
    for (const [key, def] of Object.entries(defs)) {
      if (!def || def.external || typeof def.file !== 'string') continue;
      const file = path.resolve(rootDir, def.file);
      const real = await realpath(file).catch(() => file);
      const rel = path.relative(realRoot, real);
      if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel))
        throw new Error(`${kind.slice(0, -1)} "${key}" reads ${def.file}, which is outside the checkout`);
      const content = await readObject(real);
      const digest = kind === 'secrets' ? createHmac('sha256', secretKey) : createHash('sha256');
      const hash = digest.update(content).digest('hex').slice(0, 12);
      // compose config fills in `<project>_<key>` when the file names none: that default gets the stack's prefix.
      const prefix = !def.name || def.name === `${stack}_${key}` ? `${stack}_${key}` : def.name;
      const name = `${prefix.slice(0, MAX_OBJECT_NAME - hash.length - 1)}_${hash}`;
      doc.setIn([kind, key, 'name'], name);
      doc.setIn([kind, key, 'file'], real);
      objects.push({ kind, key, name, file: real });
    }
  }
  return { yaml: doc.toString({ lineWidth: 0 }), objects };
}

/** Reads the secret-name key, creating it (32 random bytes, hex, mode 0600, directory 0700) when missing. */
async function nameKey(file: string): Promise<Buffer> {
  const read = async (): Promise<Buffer | null> => {
    const text = (await readFile(file, 'utf8').catch(() => '')).trim();
    return /^[0-9a-f]{64}$/.test(text) ? Buffer.from(text, 'hex') : null;
  };
  const existing = await read();
  if (existing) return existing;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // `wx`: two deploys racing to create it keep the first key.
  await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
  const created = await read();
  if (!created) throw new Error(`cannot read the secret-name key ${file}`);
  return created;
}

/** The `docker stack deploy` arguments (reading the stack file from stdin). */
function stackDeployArgs(stack: string, o: { prune: boolean; pull: StackDeployInput['pull'] }): string[] {
  const resolve = o.pull === 'always' ? 'always' : o.pull === 'missing' ? 'changed' : 'never';
  return [
    'stack',
    'deploy',
    '--compose-file',
    '-',
    ...(o.prune ? ['--prune'] : []),
    '--with-registry-auth',
    '--resolve-image',
    resolve,
    stack,
  ];
}

/**
 * Resolves the project with `docker compose config`, rewrites it ({@link rewriteStackFile}) and runs
 * `docker stack deploy --compose-file - [--prune] --with-registry-auth --resolve-image … <stack>` against
 * `dockerHost`. Never rejects: failures come back as {@link ComposeFailure} (codes COMPOSE_NOT_FOUND,
 * STACK_CONFIG_FAILED, STACK_BAD_PATH, STACK_PREPARE_FAILED, STACK_DEPLOY_FAILED, DOCKER_UNREACHABLE, COMPOSE_TIMEOUT…).
 */
export async function deployStack(
  input: StackDeployInput,
  mask: (text: string) => string = (t) => t,
): Promise<ComposeFailure | ({ ok: true } & ComposeOutput)> {
  const deadline = Date.now() + input.timeoutMs;
  const remaining = (): number => Math.max(1, deadline - Date.now());
  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return composeNotFound();
  const configArgs = [
    ...cmd.baseArgs,
    '-p',
    input.project,
    ...(input.envFile !== undefined ? ['--env-file', input.envFile] : []),
    ...input.files.flatMap((f) => ['-f', f]),
    'config',
  ];
  // The resolved file holds the decrypted values: it stays in memory (stdout is not masked: it is never shown), and
  // only compose's stderr is ever reported, masked.
  const c = await exec(cmd.file, configArgs, {
    cwd: input.cwd,
    timeoutMs: remaining(),
    signal: input.signal,
    env: composeEnv(process.env, input.engineEnv ?? input.dockerHost),
    inheritEnv: false,
    niceness: 10,
  });
  const clean = (t: string): string => mask(maskSecrets(t));
  if (c.code !== 0) {
    const err = clean(c.stderr);
    return classifyFailure(
      { ...c, stdout: '', stderr: err, output: err, error: c.error && clean(c.error) },
      'STACK_CONFIG_FAILED',
      'compose config',
      input.timeoutMs,
    );
  }
  let stackFile: string;
  try {
    const key = input.nameKeyFile ? await nameKey(input.nameKeyFile) : randomBytes(32);
    stackFile = (await rewriteStackFile(c.stdout, input.project, input.rootDir ?? input.cwd, key)).yaml;
  } catch (err) {
    const message = maskSecrets((err as Error).message);
    const code = /outside the checkout/.test(message) ? 'STACK_BAD_PATH' : 'STACK_PREPARE_FAILED';
    return { ok: false, code, message, transient: false };
  }
  const r = await exec('docker', stackDeployArgs(input.project, input), {
    cwd: input.cwd,
    timeoutMs: remaining(),
    env: composeEnv(process.env, input.engineEnv ?? input.dockerHost),
    inheritEnv: false,
    input: stackFile,
    signal: input.signal,
    niceness: 10,
  });
  const res = { ...r, stdout: clean(r.stdout), stderr: clean(r.stderr), output: clean(r.output) };
  if (r.code !== 0) return classifyFailure(res, 'STACK_DEPLOY_FAILED', 'docker stack deploy', input.timeoutMs);
  return { ok: true, output: res.output };
}

/**
 * Removes the stack's configs and secrets that neither the current nor the previous spec of any of its services
 * uses (the previous one is what a Swarm rollback returns to). Returns the names removed; errors are ignored (an
 * object still in use stays).
 */
export async function pruneStackObjects(docker: Dockerode, stack: string): Promise<string[]> {
  const filters = { label: [`${STACK_LABEL}=${stack}`] };
  const services = await docker.listServices({ filters });
  const used = new Set<string>();
  for (const s of services)
    for (const spec of [s.Spec, (s as { PreviousSpec?: Dockerode.ServiceSpec }).PreviousSpec]) {
      const c = spec?.TaskTemplate as { ContainerSpec?: Dockerode.ContainerSpec } | undefined;
      for (const x of c?.ContainerSpec?.Configs ?? []) if (x.ConfigName) used.add(`c:${x.ConfigName}`);
      for (const x of c?.ContainerSpec?.Secrets ?? []) if (x.SecretName) used.add(`s:${x.SecretName}`);
    }
  const removed: string[] = [];
  for (const c of await docker.listConfigs({ filters })) {
    const name = c.Spec?.Name ?? '';
    if (used.has(`c:${name}`)) continue;
    if (
      await docker
        .getConfig(c.ID)
        .remove()
        .then(
          () => true,
          () => false,
        )
    )
      removed.push(name);
  }
  for (const s of await docker.listSecrets({ filters })) {
    const name = s.Spec?.Name ?? '';
    if (used.has(`s:${name}`)) continue;
    if (
      await docker
        .getSecret(s.ID)
        .remove()
        .then(
          () => true,
          () => false,
        )
    )
      removed.push(name);
  }
  return removed;
}

/** One service of a stack as the watch saw it last. */
export interface ServiceState {
  id: string;
  name: string;
  /** Desired replicas (replicated mode), or null (global and job modes). */
  desired: number | null;
  /** Running tasks of the current spec. */
  running: number;
  /** `UpdateStatus.State`, or '' when the service has no update. */
  update: string;
  updateMessage: string;
}

export interface WatchOptions {
  docker: Dockerode;
  stack: string;
  timeoutMs: number;
  /** Poll period (default 1 s). */
  pollMs?: number;
  /**
   * How long a task must have been running to count (default min(3 s, timeoutMs/2)): a task that crashes right
   * after start would otherwise pass on a first deploy, where no update monitor watches it.
   */
  stableMs?: number;
  signal?: AbortSignal;
}

/** The outcome of {@link watchStack}: converged, or a coded failure; `services` as last seen. */
export type WatchResult = ({ ok: true } | { ok: false; code: string; message: string; transient: boolean }) & {
  services: ServiceState[];
};

/** Tasks of a service that failed on a first deploy (no update to roll back) before the watch gives up early. */
const FIRST_DEPLOY_FAILURES = 3;

/**
 * Waits until every service of `stack` has converged. Codes: SWARM_ROLLED_BACK (Swarm rolled the update back, or
 * was still rolling it back at the timeout), SWARM_ROLLBACK_PAUSED, SWARM_UPDATE_PAUSED, SWARM_TASKS_FAILING (tasks
 * of a new service keep failing), SWARM_NO_SERVICES, VERIFY_TIMEOUT (a stuck update), VERIFY_ABORTED,
 * DOCKER_UNREACHABLE / DOCKER_ERROR (transient). Never rejects.
 */
export async function watchStack(o: WatchOptions): Promise<WatchResult> {
  const pollMs = Math.max(50, o.pollMs ?? 1_000);
  const stableMs = Math.max(0, o.stableMs ?? Math.min(3_000, o.timeoutMs / 2));
  const deadline = Date.now() + o.timeoutMs;
  let services: ServiceState[] = [];
  const fail = (code: string, message: string, transient = false): WatchResult => ({
    ok: false,
    code,
    message,
    transient,
    services,
  });
  for (;;) {
    if (o.signal?.aborted) return fail('VERIFY_ABORTED', 'verification aborted', true);
    let pending: ServiceState[];
    try {
      const seen = await stackStates(o.docker, o.stack, stableMs);
      services = seen.map((s) => s.state);
      if (services.length === 0) return fail('SWARM_NO_SERVICES', `no services found for stack "${o.stack}"`);
      for (const s of seen) {
        const st = s.state;
        const why = st.updateMessage ? `: ${maskSecrets(st.updateMessage)}` : '';
        if (st.update === 'rollback_completed')
          return fail('SWARM_ROLLED_BACK', `Swarm rolled back the update of ${st.name}${why}`);
        if (st.update === 'rollback_paused')
          return fail('SWARM_ROLLBACK_PAUSED', `Swarm paused the rollback of ${st.name}${why}`);
        if (st.update === 'paused') return fail('SWARM_UPDATE_PAUSED', `Swarm paused the update of ${st.name}${why}`);
        if (st.update === '' && s.failedTasks >= FIRST_DEPLOY_FAILURES)
          return fail('SWARM_TASKS_FAILING', `tasks of ${st.name} keep failing: ${maskSecrets(s.lastError)}`);
      }
      pending = seen.filter((s) => !s.converged).map((s) => s.state);
    } catch (err) {
      if (o.signal?.aborted) return fail('VERIFY_ABORTED', 'verification aborted', true);
      const e = err as { code?: string; statusCode?: number; message?: string };
      const unreachable = !e.statusCode;
      return fail(
        unreachable ? 'DOCKER_UNREACHABLE' : 'DOCKER_ERROR',
        `${unreachable ? 'Docker engine unreachable' : `Docker engine error (HTTP ${e.statusCode})`}: ${maskSecrets(e.message ?? String(err))}`,
        true,
      );
    }
    if (pending.length === 0) return { ok: true, services };
    const left = deadline - Date.now();
    if (left <= 0) {
      const rolling = pending.find((s) => s.update === 'rollback_started');
      if (rolling) return fail('SWARM_ROLLED_BACK', `Swarm is rolling back the update of ${rolling.name}`);
      return fail(
        'VERIFY_TIMEOUT',
        `stack ${o.stack} not converged after ${Math.round(o.timeoutMs / 1000)} s: ${pending.map(describeService).join(', ')}`,
      );
    }
    try {
      await sleep(Math.min(pollMs, left), undefined, { signal: o.signal });
    } catch {
      return fail('VERIFY_ABORTED', 'verification aborted', true);
    }
  }
}

/** "web (1/2 running, update updating)". */
export function describeService(s: ServiceState): string {
  const parts = [`${s.running}/${s.desired ?? '?'} running`];
  if (s.update) parts.push(`update ${s.update}`);
  return `${s.name} (${parts.join(', ')})`;
}

/** Deterministic JSON (sorted keys) for comparing task specs. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`)
    .join(',')}}`;
}

/** A task runs the service's current spec: every member both specs have is equal (tasks carry no `Runtime`). */
function sameSpec(task: Record<string, unknown> | undefined, service: Record<string, unknown> | undefined): boolean {
  if (!task || !service) return false;
  for (const k of Object.keys(service)) {
    if (k === 'Runtime' || !(k in task)) continue;
    if (canonical(task[k]) !== canonical(service[k])) return false;
  }
  return true;
}

interface SeenService {
  state: ServiceState;
  converged: boolean;
  failedTasks: number;
  lastError: string;
}

interface TaskInfo {
  Spec?: Record<string, unknown>;
  DesiredState?: string;
  Status?: { State?: string; Timestamp?: string; Err?: string };
}

async function stackStates(docker: Dockerode, stack: string, stableMs: number): Promise<SeenService[]> {
  const list = await docker.listServices({ filters: { label: [`${STACK_LABEL}=${stack}`] } });
  const out: SeenService[] = [];
  for (const svc of list) {
    const spec = svc.Spec as (Dockerode.ServiceSpec & { Mode?: Record<string, { Replicas?: number }> }) | undefined;
    const template = spec?.TaskTemplate as Record<string, unknown> | undefined;
    const replicated = spec?.Mode?.Replicated;
    const isJob = Boolean(spec?.Mode?.ReplicatedJob || spec?.Mode?.GlobalJob);
    const tasks = (await docker.listTasks({ filters: { service: [svc.ID as string] } })) as TaskInfo[];
    const current = tasks.filter((t) => sameSpec(t.Spec, template));
    const now = Date.now();
    const running = current.filter(
      (t) =>
        t.DesiredState === 'running' &&
        t.Status?.State === 'running' &&
        now - (Date.parse(t.Status.Timestamp ?? '') || now) >= stableMs,
    ).length;
    const wanted = current.filter((t) => t.DesiredState === 'running').length;
    const failed = current.filter((t) => t.Status?.State === 'failed' || t.Status?.State === 'rejected');
    const updateStatus = (svc as { UpdateStatus?: { State?: string; Message?: string } }).UpdateStatus;
    const update = updateStatus?.State ?? '';
    const desired = replicated ? (replicated.Replicas ?? 1) : null;
    const tasksReady = isJob
      ? true
      : desired !== null
        ? running >= desired && wanted <= desired
        : running > 0 && running === wanted;
    out.push({
      state: {
        id: svc.ID as string,
        name: spec?.Name ?? (svc.ID as string),
        desired,
        running,
        update,
        updateMessage: updateStatus?.Message ?? '',
      },
      converged: (update === '' || update === 'completed') && tasksReady,
      failedTasks: failed.length,
      lastError: failed.map((t) => t.Status?.Err ?? '').find(Boolean) ?? 'no error text',
    });
  }
  return out.sort((a, b) => a.state.name.localeCompare(b.state.name));
}

/** Most bytes of service log text one call returns (the newest are kept). */
const SERVICE_LOG_MAX_BYTES = 1024 * 1024;

/**
 * The last `tail` lines (1..5000) of a stack service's logs (all its tasks), demultiplexed, or null when the service
 * is unknown or not part of `stack`. Engine errors other than 404 reject.
 */
export async function serviceLogs(
  docker: Dockerode,
  stack: string,
  service: string,
  q: { tail: number; since?: number },
): Promise<string | null> {
  const svc = docker.getService(service);
  let info: Dockerode.Service;
  try {
    info = await svc.inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
  if (info.Spec?.Labels?.[STACK_LABEL] !== stack) return null;
  const tail = Math.min(5_000, Math.max(1, Math.floor(Number.isFinite(q.tail) ? q.tail : 100)));
  const raw = (await docker.getService(info.ID).logs({
    stdout: true,
    stderr: true,
    tail,
    follow: false,
    ...(q.since !== undefined ? { since: q.since } : {}),
  })) as unknown as Buffer | string;
  const buf = demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
  const text = buf.subarray(Math.max(0, buf.length - SERVICE_LOG_MAX_BYTES)).toString('utf8');
  return text;
}

/**
 * Restarts a stack service like `docker service update --force`: the same spec with `ForceUpdate` + 1, so Swarm
 * replaces every task following the service's update config. Returns false when the service is unknown or not part
 * of `stack`.
 */
export async function restartService(docker: Dockerode, stack: string, service: string): Promise<boolean> {
  let info: Dockerode.Service;
  try {
    info = await docker.getService(service).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
  if (info.Spec?.Labels?.[STACK_LABEL] !== stack) return false;
  const spec = info.Spec as Dockerode.ServiceSpec & { TaskTemplate?: { ForceUpdate?: number } };
  const template = { ...spec.TaskTemplate, ForceUpdate: (spec.TaskTemplate?.ForceUpdate ?? 0) + 1 };
  await docker.getService(info.ID).update({ ...spec, TaskTemplate: template, version: info.Version?.Index });
  return true;
}

/**
 * Service label holding the desired replica count a stop (scale to 0) replaced: a start scales back to it. It lives
 * on the service itself, so it survives a restart of Shiparr; the next `docker stack deploy` sets the spec (and the
 * replicas) from the compose file again and drops it.
 */
const STOPPED_REPLICAS_LABEL = 'dev.shiparr.replicas-before-stop';

interface TaskListEntry {
  ID?: string;
  ServiceID?: string;
  Slot?: number;
  NodeID?: string;
  DesiredState?: string;
  Status?: { State?: string; Timestamp?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
  Spec?: { ContainerSpec?: { Image?: string } };
}

/** The image reference without the digest `docker stack deploy` pins (`busybox:1@sha256:…` → `busybox:1`). */
function shortImage(image: string | undefined): string {
  return (image ?? '').replace(/@sha256:[0-9a-f]{64}$/, '');
}

/**
 * The services of `stack` with their tasks, sorted by name: two list calls (services, tasks) plus one for the node
 * names. A task is listed while it is meant to run or has not reached a final state yet.
 */
export async function listStackServices(docker: Dockerode, stack: string): Promise<SwarmService[]> {
  const list = await docker.listServices({ filters: { label: [`${STACK_LABEL}=${stack}`] } });
  if (list.length === 0) return [];
  const ids = list.map((s) => s.ID as string);
  const [tasks, nodes] = await Promise.all([
    docker.listTasks({ filters: { service: ids } }) as Promise<TaskListEntry[]>,
    docker.listNodes().then(
      (n) =>
        new Map(n.map((x) => [x.ID as string, (x.Description?.Hostname as string | undefined) ?? (x.ID as string)])),
      () => new Map<string, string>(),
    ),
  ]);
  const final = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove']);
  return list
    .map((svc): SwarmService => {
      const spec = svc.Spec as
        | (Dockerode.ServiceSpec & { Mode?: Record<string, { Replicas?: number }>; Labels?: Record<string, string> })
        | undefined;
      const name = spec?.Name ?? (svc.ID as string);
      const mode = spec?.Mode?.Replicated ? 'replicated' : spec?.Mode?.Global ? 'global' : 'job';
      const own = tasks
        .filter((t) => t.ServiceID === svc.ID)
        .filter((t) => t.DesiredState === 'running' || !final.has(t.Status?.State ?? ''))
        .map((t): SwarmTask => ({
          id: t.ID ?? '',
          slot: typeof t.Slot === 'number' && t.Slot > 0 ? t.Slot : null,
          node: nodes.get(t.NodeID ?? '') ?? t.NodeID ?? '',
          state: t.Status?.State ?? 'unknown',
          desiredState: t.DesiredState ?? 'unknown',
          error: t.Status?.Err ? maskSecrets(t.Status.Err) : null,
          image: shortImage(t.Spec?.ContainerSpec?.Image),
          containerId: t.Status?.ContainerStatus?.ContainerID ?? null,
          since: t.Status?.Timestamp ? new Date(Date.parse(t.Status.Timestamp)).toISOString() : null,
        }))
        .sort((a, b) => (b.since ?? '').localeCompare(a.since ?? ''));
      const stopped = Number(spec?.Labels?.[STOPPED_REPLICAS_LABEL]);
      const container = (spec?.TaskTemplate as { ContainerSpec?: { Image?: string } } | undefined)?.ContainerSpec;
      const update = (svc as { UpdateStatus?: { State?: string } }).UpdateStatus?.State;
      return {
        id: svc.ID as string,
        name,
        service: name.startsWith(`${stack}_`) ? name.slice(stack.length + 1) : name,
        mode,
        desired: mode === 'replicated' ? (spec?.Mode?.Replicated?.Replicas ?? 1) : null,
        running: own.filter((t) => t.state === 'running').length,
        image: shortImage(container?.Image),
        update: update ?? null,
        stoppedReplicas: Number.isInteger(stopped) && stopped > 0 ? stopped : null,
        tasks: own,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The tasks of every stack on a swarm manager, for a swarm repository's container counts: `total` counts the tasks
 * meant to run (desired state running, on any node), `running` those running. Two list calls for all stacks. An
 * engine that is not a swarm manager (503) has no stacks: an empty map.
 */
export async function countStackTasks(docker: Dockerode): Promise<Map<string, ContainerCounts>> {
  const counts = new Map<string, ContainerCounts>();
  let services: Dockerode.Service[];
  try {
    services = await docker.listServices({ filters: { label: [STACK_LABEL] } });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 503) return counts;
    throw err;
  }
  const stackOf = new Map<string, string>();
  for (const svc of services) {
    const stack = (svc.Spec as { Labels?: Record<string, string> } | undefined)?.Labels?.[STACK_LABEL];
    if (stack && svc.ID) stackOf.set(svc.ID, stack);
  }
  if (stackOf.size === 0) return counts;
  const tasks = (await docker.listTasks({ filters: { 'desired-state': ['running'] } })) as TaskListEntry[];
  for (const t of tasks) {
    const stack = stackOf.get(t.ServiceID ?? '');
    if (!stack || t.DesiredState !== 'running') continue;
    const n = counts.get(stack) ?? { total: 0, running: 0, unhealthy: 0 };
    n.total++;
    if (t.Status?.State === 'running') n.running++;
    counts.set(stack, n);
  }
  return counts;
}

/** Why {@link scaleService} refused: the service is not replicated, or its count before the stop is unknown. */
export type ScaleRefusal = 'not-replicated' | 'unknown-replicas';

/**
 * Stops a replicated stack service by scaling it to 0 (recording the replicas it had in {@link STOPPED_REPLICAS_LABEL}),
 * or starts it by scaling back to that count. A service already stopped/started is left as it is. Returns false for
 * a service that is unknown or not part of `stack`, a {@link ScaleRefusal} when the action cannot be done.
 */
export async function scaleService(
  docker: Dockerode,
  stack: string,
  service: string,
  action: 'stop' | 'start',
): Promise<true | false | ScaleRefusal> {
  let info: Dockerode.Service;
  try {
    info = await docker.getService(service).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
  if (info.Spec?.Labels?.[STACK_LABEL] !== stack) return false;
  const spec = info.Spec as Dockerode.ServiceSpec & { Mode?: { Replicated?: { Replicas?: number } } };
  const replicated = spec.Mode?.Replicated;
  if (!replicated) return 'not-replicated';
  const current = replicated.Replicas ?? 1;
  const labels = { ...spec.Labels };
  let replicas: number;
  if (action === 'stop') {
    if (current === 0) return true;
    labels[STOPPED_REPLICAS_LABEL] = String(current);
    replicas = 0;
  } else {
    if (current > 0) return true;
    const before = Number(labels[STOPPED_REPLICAS_LABEL]);
    if (!Number.isInteger(before) || before < 1) return 'unknown-replicas';
    delete labels[STOPPED_REPLICAS_LABEL];
    replicas = before;
  }
  await docker.getService(info.ID).update({
    ...spec,
    Labels: labels,
    Mode: { ...spec.Mode, Replicated: { ...replicated, Replicas: replicas } },
    version: info.Version?.Index,
  });
  return true;
}

/**
 * Removes every service of `stack` (what `docker stack rm` does to services). Its networks, configs, secrets and
 * volumes stay: the next deploy uses them again, and the stack-deploy prune removes configs and secrets no spec uses.
 * Returns the names removed.
 */
export async function removeStackServices(docker: Dockerode, stack: string): Promise<string[]> {
  const list = await docker.listServices({ filters: { label: [`${STACK_LABEL}=${stack}`] } });
  const removed: string[] = [];
  for (const s of list) {
    try {
      await docker.getService(s.ID as string).remove();
      removed.push(s.Spec?.Name ?? (s.ID as string));
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
  return removed;
}

/**
 * The id and TTY setting of a service of `stack`, or null when it is unknown or not part of `stack` (the service
 * logs reader's membership check).
 */
export async function stackService(
  docker: Dockerode,
  stack: string,
  service: string,
): Promise<{ id: string; tty: boolean } | null> {
  let info: Dockerode.Service;
  try {
    info = await docker.getService(service).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
  if (info.Spec?.Labels?.[STACK_LABEL] !== stack) return null;
  const c = (info.Spec?.TaskTemplate as { ContainerSpec?: { TTY?: boolean } } | undefined)?.ContainerSpec;
  return { id: info.ID, tty: c?.TTY === true };
}
