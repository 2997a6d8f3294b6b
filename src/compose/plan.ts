/**
 * @module Plan: what `docker compose up -d` would change, per service, without changing anything.
 *
 * Compose decides to recreate a container when the service's config hash (`docker compose config --hash`) differs
 * from the container's `com.docker.compose.config-hash` label. That hash misses what a service reads from files:
 * bind-mounted files and directories, inline and file `configs`, `secrets` files (compose issue #11900). Shiparr
 * adds its own content labels to every service (an override file written by the apply step, see
 * {@link contentOverride}):
 *
 * - `dev.shiparr.content-hash`: sha256 over the three maps below, so compose recreates a service whose bound files
 *   changed on a real deploy too;
 * - `dev.shiparr.content`: JSON `{f: {path: hash}, c: {config or secret: hash}, e: {ENV_KEY: hmac}}` with paths
 *   relative to the checkout root, short sha256 hashes of file contents, and for environment values an HMAC with a
 *   per-install key (a short value cannot be guessed from its hash); the plan compares it with the running
 *   container's to name WHAT changed (file paths, config names, env KEY NAMES — never a value).
 *
 * The plan resolves the project once (`config --format json`), adds the labels to that resolved model, and asks
 * compose for the hashes of the result (`config --hash '*'` on it): the same hashes `up` would compute with the
 * override file. A plan of a scratch copy maps the scratch root back to the live checkout in every string, so bind
 * sources hash as they will when the live checkout is applied.
 */
import { createHash, createHmac } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ServicePlan } from '../domain/types.ts';
import type { TaskResult } from '../lib/task-result.ts';
import {
  classifyFailure,
  composeNotFound,
  detectCompose,
  runCompose,
  type ComposeCommand,
  type ProjectArgs,
} from './cli.ts';
import { createDocker, PROJECT_LABEL } from './verify.ts';

/** Label: sha256 over a service's content map (files, configs, env HMACs). */
const CONTENT_HASH_LABEL = 'dev.shiparr.content-hash';
/** Label: the content map itself (JSON, hashes only). */
const CONTENT_LABEL = 'dev.shiparr.content';
const SERVICE_LABEL = 'com.docker.compose.service';
const CONFIG_HASH_LABEL = 'com.docker.compose.config-hash';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';

/** What a plan needs: the project as compose sees it, and where it lives. */
export interface PlanInput extends ProjectArgs {
  /** Absolute compose directory (compose's working directory). */
  cwd: string;
  /** Compose files relative to cwd (empty = compose's default lookup). */
  files: string[];
  /** Absolute checkout root: paths in the content map are relative to it; bind sources outside it are not hashed. */
  rootDir: string;
  /** The live checkout root when `rootDir` is a scratch copy: every resolved path is mapped back to it. */
  liveRoot?: string;
  dockerHost?: string;
  /** compose would remove orphans (`remove_orphans`): only mentioned in the reasons of `remove`. */
  removeOrphans: boolean;
  /** Per-install HMAC key (hex) for environment values. */
  hmacKey: string;
  timeoutMs: number;
}

/** A plan: per service, what applying would do and why. `noop` when every service is `keep`. */
export interface PlanOutput {
  services: ServicePlan[];
  noop: boolean;
}

/** Per service: the content map and its hash (the labels the override adds). */
interface Content {
  /** Compose's config hash of the service without its environment and Shiparr's labels: "the rest of the config". */
  b: string;
  f: Record<string, string>;
  c: Record<string, string>;
  e: Record<string, string>;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
const isObj = (v: Json | undefined): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const short = (h: string) => (/^[0-9a-f]{64}$/.test(h) ? h.slice(0, 16) : h);
const toPosix = (p: string) => p.split(path.sep).join('/');

/** Files and directories hashed per bind source at most (a huge directory is hashed by names and sizes beyond it). */
const MAX_FILES = 5_000;

/**
 * Which paths of the checkout count: the files git tracks there and the directories above them. `null`: every path
 * (a scratch export holds only the commit's files). Untracked files — a database's data directory bind-mounted from
 * the checkout, logs — change all the time and are not the repository's content.
 */
export interface Tracked {
  files: ReadonlySet<string>;
  dirs: ReadonlySet<string>;
  /** Decrypted files (tracked too): hashed with the per-install HMAC key, so a short secret cannot be guessed. */
  secret: ReadonlySet<string>;
}

/** {@link Tracked} from the list of tracked file paths (relative, `/`-separated). */
export function trackedFrom(tracked: readonly string[], secret: readonly string[] = []): Tracked {
  const dirs = new Set<string>(['.']);
  const files = [...tracked, ...secret];
  for (const f of files) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return { files: new Set(files), dirs, secret: new Set(secret) };
}

/**
 * Hash of a path of the checkout (`rel` relative to its root): file content, directory tree (names, types, contents
 * of the tracked entries), symlink target; `missing` when absent, `unreadable` when it cannot be read.
 */
async function hashPath(
  p: string,
  rel: string,
  tracked: Tracked | null,
  budget: { n: number; key: string },
): Promise<string> {
  try {
    const st = await lstat(p).catch(() => null);
    if (!st) return 'missing';
    const isTracked = (r: string, dir: boolean) => !tracked || (dir ? tracked.dirs.has(r) : tracked.files.has(r));
    if (st.isSymbolicLink()) return isTracked(rel, false) ? sha(`link:${await readlink(p)}`) : 'untracked';
    if (st.isFile()) {
      if (!isTracked(rel, false)) return 'untracked';
      budget.n++;
      if (tracked?.secret.has(rel))
        return createHmac('sha256', Buffer.from(budget.key, 'hex'))
          .update(await readFile(p))
          .digest('hex');
      return budget.n > MAX_FILES ? sha(`size:${st.size}:${st.mtimeMs}`) : sha(await readFile(p));
    }
    if (st.isDirectory()) {
      const h = createHash('sha256');
      for (const e of (await readdir(p)).sort()) {
        const r = rel === '.' ? e : `${rel}/${e}`;
        if (e === '.git' || (tracked && !tracked.files.has(r) && !tracked.dirs.has(r))) continue;
        h.update(`${e}\0${await hashPath(path.join(p, e), r, tracked, budget)}\0`);
      }
      return h.digest('hex');
    }
    return sha(`special:${st.mode}`);
  } catch {
    return 'unreadable';
  }
}

/** `p` relative to `root` when inside it (real paths), else null. */
async function inside(root: string, p: string): Promise<string | null> {
  const realRoot = await realpath(root).catch(() => root);
  const real = await realpath(p).catch(() => p);
  const rel = path.relative(realRoot, real);
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return null;
  return rel === '' ? '.' : rel;
}

/** Replaces `from` with `to` at the start of every string of a JSON value (compose's model output keeps `$$` escaped). */
function remap(v: Json, from: string | null, to: string): Json {
  if (typeof v === 'string') {
    return from && (v === from || v.startsWith(`${from}/`)) ? to + v.slice(from.length) : v;
  }
  if (Array.isArray(v)) return v.map((x) => remap(x, from, to));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, remap(x, from, to)]));
  return v;
}

/** The content map of one service of a resolved project (`config --format json`), read from `rootDir`. */
async function serviceContent(model: Obj, svc: Obj, input: PlanInput, tracked: Tracked | null): Promise<Content> {
  const f: Record<string, string> = {};
  const c: Record<string, string> = {};
  const e: Record<string, string> = {};
  const budget = { n: 0, key: input.hmacKey };
  const volumes = Array.isArray(svc['volumes']) ? svc['volumes'] : [];
  for (const v of volumes) {
    if (!isObj(v) || v['type'] !== 'bind' || typeof v['source'] !== 'string') continue;
    const rel = await inside(input.rootDir, v['source']);
    if (rel !== null) f[rel] = short(await hashPath(v['source'], toPosix(rel), tracked, budget));
  }
  for (const kind of ['configs', 'secrets'] as const) {
    const refs = Array.isArray(svc[kind]) ? svc[kind] : [];
    const top = isObj(model[kind]) ? model[kind] : {};
    for (const ref of refs) {
      const name =
        typeof ref === 'string' ? ref : isObj(ref) && typeof ref['source'] === 'string' ? ref['source'] : null;
      const def = name !== null ? top[name] : undefined;
      if (name === null || !isObj(def)) continue;
      const key = `${kind === 'configs' ? 'config' : 'secret'}:${name}`;
      if (typeof def['content'] === 'string') c[key] = short(sha(def['content']));
      else if (typeof def['file'] === 'string') {
        const rel = await inside(input.rootDir, def['file']);
        c[key] =
          rel === null ? 'outside the checkout' : short(await hashPath(def['file'], toPosix(rel), tracked, budget));
      } else if (typeof def['environment'] === 'string')
        c[key] = short(
          createHmac('sha256', Buffer.from(input.hmacKey, 'hex')).update(def['environment']).digest('hex'),
        );
    }
  }
  const env = isObj(svc['environment']) ? svc['environment'] : {};
  for (const [k, v] of Object.entries(env)) {
    const hmac = createHmac('sha256', Buffer.from(input.hmacKey, 'hex'));
    e[k] = short(hmac.update(v === null ? '\0unset' : String(v)).digest('hex'));
  }
  return { b: '', f, c, e };
}

const contentJson = (c: Content) => JSON.stringify({ b: c.b, f: sortKeys(c.f), c: sortKeys(c.c), e: sortKeys(c.e) });
const sortKeys = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** The labels Shiparr adds to a service, `$` escaped for compose's interpolation. */
function labelsOf(c: Content): Record<string, string> {
  const json = contentJson(c);
  return { [CONTENT_HASH_LABEL]: sha(json), [CONTENT_LABEL]: json.replaceAll('$', '$$$$') };
}

type Fail = Extract<TaskResult<unknown>, { ok: false }>;
type Resolved = { ok: true; model: Obj; content: Map<string, Content> } | Fail;

/** Resolves the project (`config --format json`) and computes each service's content map. */
async function resolveProject(
  input: PlanInput,
  tracked: Tracked | null,
  started: number,
  deadline: number,
): Promise<Resolved> {
  const elapsed = () => Math.round(performance.now() - started);
  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };
  const args = [
    ...cmd.baseArgs,
    '-p',
    input.project,
    ...(input.envFile !== undefined ? ['--env-file', input.envFile] : []),
    ...input.files.flatMap((f) => ['-f', f]),
    'config',
    '--format',
    'json',
  ];
  const r = await runCompose(cmd, args, {
    cwd: input.cwd,
    dockerHost: input.dockerHost,
    timeoutMs: Math.max(1, deadline - Date.now()),
  });
  // compose's output may echo values of the resolved environment: a failure carries only compose's error lines.
  if (r.code !== 0)
    return {
      ...classifyFailure({ ...r, output: r.stderr }, 'COMPOSE_CONFIG_FAILED', 'compose config', input.timeoutMs),
      durationMs: elapsed(),
    };
  let model: Obj;
  try {
    const parsed = JSON.parse(r.stdout) as Json;
    if (!isObj(parsed)) throw new Error('not an object');
    model = parsed;
  } catch (err) {
    return {
      ok: false,
      code: 'COMPOSE_CONFIG_FAILED',
      message: `compose config printed no JSON model (${(err as Error).message})`,
      transient: false,
      durationMs: elapsed(),
    };
  }
  const services = isObj(model['services']) ? model['services'] : {};
  const content = new Map<string, Content>();
  const bare: Obj = {};
  for (const [name, svc] of Object.entries(services)) {
    if (!isObj(svc)) continue;
    content.set(name, await serviceContent(model, svc, input, tracked));
    const { environment: _env, ...rest } = svc;
    bare[name] = rest;
  }
  const base = await hashModel(cmd, { ...model, services: bare }, () => null, input, deadline);
  if (!base.ok) return { ...base, durationMs: elapsed() };
  for (const [name, c] of content) c.b = base.map.get(name) ?? '';
  return { ok: true, model, content };
}

/**
 * Writes the override file the apply step passes to compose after the repository's files: Shiparr's content labels
 * per service (hashes only). The file is written 0600 with a fresh name, then renamed over `out`.
 */
export async function contentOverride(
  input: PlanInput,
  tracked: Tracked | null,
  out: string,
): Promise<TaskResult<{ file: string }>> {
  const started = performance.now();
  const r = await resolveProject(input, tracked, started, Date.now() + input.timeoutMs);
  if (!r.ok) return r;
  const services: Record<string, { labels: Record<string, string> }> = {};
  for (const [name, c] of r.content) services[name] = { labels: labelsOf(c) };
  await mkdir(path.dirname(out), { recursive: true, mode: 0o700 });
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ services }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, out);
  return { ok: true, durationMs: Math.round(performance.now() - started), file: out };
}

interface Running {
  service: string;
  state: string;
  configHash: string | null;
  content: Content | null;
  imageId: string;
}

/** Names of keys whose value differs between two maps (added and removed keys included). */
function changedKeys(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => a[k] !== b[k]).sort();
}

function parseContent(label: string | undefined): Content | null {
  if (!label) return null;
  try {
    const v = JSON.parse(label) as Partial<Content>;
    return { b: v.b ?? '', f: v.f ?? {}, c: v.c ?? {}, e: v.e ?? {} };
  } catch {
    return null;
  }
}

/** Why a service's container differs from the target (empty: nothing Shiparr can name beyond the config hash). */
function contentReasons(want: Content, have: Content | null): string[] {
  if (!have) return ['config hash changed', 'no Shiparr content label on the running container yet'];
  const reasons: string[] = [];
  if (want.b !== have.b) reasons.push('config hash changed');
  const env = changedKeys(want.e, have.e);
  if (env.length) reasons.push(`env changed (${env.join(', ')})`);
  const files = changedKeys(want.f, have.f);
  if (files.length) reasons.push(`bind-mounted file changed (${files.join(', ')})`);
  const configs = changedKeys(want.c, have.c);
  if (configs.length) reasons.push(`inline config changed (${configs.join(', ')})`);
  return reasons;
}

type Hashes = { ok: true; map: Map<string, string> } | Omit<Fail, 'durationMs'>;

/**
 * Compose's config hash of every service of the resolved `model` with `labels(service)` added (null: none), the scratch
 * root mapped back to the live checkout: the hashes `up` computes for the live checkout with the content override.
 */
async function hashModel(
  cmd: ComposeCommand,
  model: Obj,
  labels: (service: string) => Record<string, string> | null,
  input: PlanInput,
  deadline: number,
): Promise<Hashes> {
  const services = isObj(model['services']) ? model['services'] : {};
  const labelled: Obj = {};
  for (const [name, svc] of Object.entries(services)) {
    if (!isObj(svc)) continue;
    const extra = labels(name);
    labelled[name] = extra ? { ...svc, labels: { ...(isObj(svc['labels']) ? svc['labels'] : {}), ...extra } } : svc;
  }
  const from = input.liveRoot ? path.resolve(input.rootDir) : null;
  const mapped = remap({ ...model, services: labelled }, from, input.liveRoot ? path.resolve(input.liveRoot) : '');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-plan-'));
  try {
    await writeFile(path.join(tmp, 'model.json'), JSON.stringify(mapped), { mode: 0o600 });
    const r = await runCompose(
      cmd,
      [...cmd.baseArgs, '-p', input.project, '-f', 'model.json', 'config', '--hash', '*'],
      {
        cwd: tmp,
        dockerHost: input.dockerHost,
        timeoutMs: Math.max(1, deadline - Date.now()),
      },
    );
    if (r.code !== 0) {
      const { durationMs: _, ...fail } = {
        ...classifyFailure(
          { ...r, output: r.stderr },
          'COMPOSE_CONFIG_FAILED',
          'compose config --hash',
          input.timeoutMs,
        ),
        durationMs: 0,
      };
      return fail;
    }
    const map = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^(\S+)\s+([0-9a-f]{64})$/.exec(line.trim());
      if (m) map.set(m[1] as string, m[2] as string);
    }
    return { ok: true, map };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Computes the plan: resolves the project, adds Shiparr's labels to the resolved model, asks compose for the config
 * hashes of that model, and compares them (and the content labels, and the image ids) with the project's running
 * containers on the engine. Reads only; never starts, stops or pulls anything.
 */
export async function computePlan(input: PlanInput, tracked: Tracked | null): Promise<TaskResult<PlanOutput>> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const deadline = Date.now() + input.timeoutMs;
  const resolved = await resolveProject(input, tracked, started, deadline);
  if (!resolved.ok) return resolved;
  const { model, content } = resolved;
  const services = isObj(model['services']) ? model['services'] : {};
  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };
  const hashes = await hashModel(cmd, model, (name) => labelsOf(content.get(name) as Content), input, deadline);
  if (!hashes.ok) return { ...hashes, durationMs: elapsed() };

  let running: Running[];
  const images = new Map<string, string | null>();
  try {
    const docker = createDocker(input.dockerHost);
    const list = await docker.listContainers({
      all: true,
      filters: JSON.stringify({ label: [`${PROJECT_LABEL}=${input.project}`] }),
    });
    running = list
      .filter((c) => c.Labels[ONEOFF_LABEL] !== 'True' && c.Labels[SERVICE_LABEL])
      .map((c) => ({
        service: c.Labels[SERVICE_LABEL] as string,
        state: c.State,
        configHash: c.Labels[CONFIG_HASH_LABEL] ?? null,
        content: parseContent(c.Labels[CONTENT_LABEL]),
        imageId: c.ImageID,
      }));
    for (const svc of Object.values(services)) {
      if (!isObj(svc) || typeof svc['image'] !== 'string' || images.has(svc['image'])) continue;
      const id = await docker
        .getImage(svc['image'])
        .inspect()
        .then((i) => i.Id)
        .catch(() => null);
      images.set(svc['image'], id);
    }
  } catch (err) {
    const message = (err as Error).message;
    return {
      ok: false,
      code: 'DOCKER_UNREACHABLE',
      message: `plan: the Docker engine did not answer: ${message}`,
      transient: true,
      durationMs: elapsed(),
    };
  }

  const plan: ServicePlan[] = [];
  for (const [name, want] of content) {
    const mine = running.filter((c) => c.service === name);
    const svc = services[name];
    if (mine.length === 0) {
      plan.push({ service: name, action: 'create', reasons: ['new service (no container yet)'] });
      continue;
    }
    const stale = mine.filter((c) => c.configHash !== hashes.map.get(name));
    if (stale.length > 0) {
      const why = contentReasons(want, stale[0]?.content ?? null);
      plan.push({ service: name, action: 'recreate', reasons: why.length ? why : ['config hash changed'] });
      continue;
    }
    const down = mine.find((c) => c.state !== 'running');
    if (down) {
      plan.push({ service: name, action: 'recreate', reasons: [`container is ${down.state}: compose will start it`] });
      continue;
    }
    const image = isObj(svc) && typeof svc['image'] === 'string' ? svc['image'] : null;
    const localId = image ? images.get(image) : null;
    const old = localId ? mine.find((c) => c.imageId !== localId) : undefined;
    if (image && localId && old) {
      plan.push({
        service: name,
        action: 'pull',
        reasons: [
          `image changed: ${image} is now ${localId.slice(0, 19)} locally (running ${old.imageId.slice(0, 19)})`,
        ],
      });
      continue;
    }
    plan.push({ service: name, action: 'keep', reasons: [] });
  }
  const gone = [...new Set(running.map((c) => c.service))].filter((s) => !content.has(s)).sort();
  for (const service of gone)
    plan.push({
      service,
      action: 'remove',
      reasons: [
        `removed service (not in the target's compose files)${input.removeOrphans ? '' : '; remove_orphans is off: compose leaves it running'}`,
      ],
    });
  plan.sort((a, b) => a.service.localeCompare(b.service));
  return { ok: true, durationMs: elapsed(), services: plan, noop: plan.every((s) => s.action === 'keep') };
}
