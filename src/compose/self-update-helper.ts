/**
 * @module The self-update helper: `docker compose up` of Shiparr's own compose project cannot run inside the
 * container it replaces (compose stops that container, and itself with it, before starting the new one). It runs in
 * a short-lived helper container instead, started from the image of our own container:
 *
 *   docker run -d --rm --name shiparr-self-update-<deploymentId> --label io.shiparr.self-update=<deploymentId>
 *     --volumes-from <own container> [--group-add …] [--network host] -e <own env names> -w <compose dir>
 *     --entrypoint sh <own image id> -c <script> <output file> docker compose … up -d …
 *
 * `--volumes-from` gives it our mounts at the same paths (the Docker socket, the data directory, the checkouts),
 * so it reaches the same engine, sees the checkout where we do and writes its combined output and exit code to
 * `<dataPath>/self-update/<deploymentId>.log` / `.exit`. It carries no compose labels: it is not part of the
 * project. Compose creates the replacement before it stops the old container, so a replacement that cannot be
 * created (a missing image, a bad file) leaves us running: we wait for the helper and fail the deployment with its
 * output. When compose does replace us, the next process reads the same files at boot (see self-update.ts).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../lib/exec.ts';
import { maskSecrets } from '../lib/redact.ts';
import type { TaskResult } from '../lib/task-result.ts';
import type { ComposeOutput } from './cli.ts';

/** Label on every helper container; its value is the deployment id. */
export const HELPER_LABEL = 'io.shiparr.self-update';
export const helperName = (deploymentId: number): string => `shiparr-self-update-${deploymentId}`;

/** Where the helper writes its compose output (`.log`) and exit code (`.exit`), under the data directory. */
export function helperFiles(dataPath: string, deploymentId: number): { dir: string; log: string; exit: string } {
  const dir = path.join(dataPath, 'self-update');
  return { dir, log: path.join(dir, `${deploymentId}.log`), exit: path.join(dir, `${deploymentId}.exit`) };
}

/** Our own container, as far as starting a helper needs it. */
export interface HelperSelf {
  containerId: string;
  /** Image id (sha256:…) of our own container: the helper runs exactly this image. */
  image?: string;
  groupAdd?: string[];
  networkMode?: string;
  /** Names of the environment variables our container was started with (values come from our process env). */
  envNames?: string[];
}

/** Environment our container gets from the image or the engine, not from the user: not forwarded. */
const NOT_FORWARDED = new Set(['PATH', 'HOSTNAME', 'HOME', 'NODE_VERSION', 'YARN_VERSION']);

/** Helper script: `sh -c SCRIPT sh <output file> <command…>`; the exit code goes to `<output file without .log>.exit`. */
const SCRIPT = 'out="$1"; shift; "$@" >"$out" 2>&1; rc=$?; echo "$rc" >"${out%.log}.exit"; exit "$rc"';

/** The `docker run` arguments of a helper (exported for the unit tests). */
export function helperRunArgs(o: {
  self: HelperSelf;
  deploymentId: number;
  cwd: string;
  logFile: string;
  compose: readonly string[];
  dockerHost?: string;
  env: NodeJS.ProcessEnv;
}): string[] {
  const { self } = o;
  const args = ['run', '-d', '--rm', '--name', helperName(o.deploymentId)];
  args.push('--label', `${HELPER_LABEL}=${o.deploymentId}`, '--volumes-from', self.containerId);
  for (const g of self.groupAdd ?? []) args.push('--group-add', g);
  if (self.networkMode === 'host') args.push('--network', 'host');
  // `-e NAME` takes the value from the docker CLI's environment (ours): no secret ends up on a command line.
  for (const name of self.envNames ?? []) if (!NOT_FORWARDED.has(name) && name in o.env) args.push('-e', name);
  if (o.dockerHost) args.push('-e', `DOCKER_HOST=${o.dockerHost}`);
  args.push('-w', o.cwd, '--entrypoint', 'sh', self.image ?? '', '-c', SCRIPT, 'sh', o.logFile, ...o.compose);
  return args;
}

export interface HelperRunOptions {
  self: HelperSelf;
  deploymentId: number;
  dataPath: string;
  /** Compose directory (same path in our container, the helper and, for binds, the host). */
  cwd: string;
  /** Compose command line, e.g. ['docker', 'compose', '--ansi', 'never', '-p', 'shiparr', 'up', '-d', …]. */
  compose: readonly string[];
  dockerHost?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

const fail = (
  code: string,
  message: string,
  durationMs: number,
  output?: string,
  transient = false,
): TaskResult<ComposeOutput> => ({ ok: false, code, message, transient, durationMs, output });

const lastLine = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1) ?? 'no output';

/** Reads what a helper left: exit code (null when it has not written one) and output. */
export async function readHelperResult(
  dataPath: string,
  deploymentId: number,
): Promise<{ exitCode: number | null; output: string }> {
  const f = helperFiles(dataPath, deploymentId);
  const read = (p: string) => readFile(p, 'utf8').catch(() => null);
  const [exit, output] = await Promise.all([read(f.exit), read(f.log)]);
  const n = exit === null ? NaN : Number(exit.trim());
  return { exitCode: Number.isInteger(n) ? n : null, output: maskSecrets(output ?? '') };
}

export async function removeHelperFiles(dataPath: string, deploymentId: number): Promise<void> {
  const f = helperFiles(dataPath, deploymentId);
  await Promise.all([rm(f.log, { force: true }), rm(f.exit, { force: true })]);
}

/**
 * Runs compose in a helper container and waits for it. Returns compose's result when this process is still alive
 * to see it (the replacement could not be created, or compose had nothing of ours to replace). When compose does
 * replace us, this process is stopped while it waits: the helper outlives it and the next process finalises.
 * An abort (shutdown) leaves the helper running; a timeout removes it.
 */
export async function runSelfUpdateHelper(o: HelperRunOptions): Promise<TaskResult<ComposeOutput>> {
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  if (!o.self.image) return fail('SELF_UPDATE_HELPER', 'self-update: the image of our own container is unknown', 0);
  const f = helperFiles(o.dataPath, o.deploymentId);
  await mkdir(f.dir, { recursive: true });
  await removeHelperFiles(o.dataPath, o.deploymentId);
  const env = o.dockerHost ? { DOCKER_HOST: o.dockerHost } : undefined;
  // A leftover of the same name (a previous attempt of this deployment id) would block `docker run --name`.
  await exec('docker', ['rm', '-f', helperName(o.deploymentId)], { timeoutMs: 30_000, env });
  const args = helperRunArgs({ ...o, logFile: f.log, env: process.env });
  const run = await exec('docker', args, { timeoutMs: 60_000, env, signal: o.signal });
  if (run.code !== 0) {
    return fail(
      'SELF_UPDATE_HELPER',
      `self-update: the helper container could not be started: ${lastLine(run.error ?? run.output)}`,
      elapsed(),
      maskSecrets(run.output),
      true,
    );
  }
  const remaining = Math.max(1_000, o.timeoutMs - elapsed());
  const wait = await exec('docker', ['wait', helperName(o.deploymentId)], {
    timeoutMs: remaining,
    env,
    signal: o.signal,
  });
  if (wait.aborted) return fail('COMPOSE_ABORTED', 'self-update compose up was aborted', elapsed(), undefined, true);
  if (wait.timedOut) {
    await exec('docker', ['rm', '-f', helperName(o.deploymentId)], { timeoutMs: 30_000, env });
    return fail(
      'COMPOSE_TIMEOUT',
      `self-update compose up timed out after ${Math.round(o.timeoutMs / 1000)} s and was killed`,
      elapsed(),
      (await readHelperResult(o.dataPath, o.deploymentId)).output,
    );
  }
  // `docker wait` prints the exit code; with --rm the container may already be gone: the .exit file has it then.
  const r = await readHelperResult(o.dataPath, o.deploymentId);
  const waited = wait.code === 0 ? Number(wait.stdout.trim()) : NaN;
  const exitCode = r.exitCode ?? (Number.isInteger(waited) ? waited : null);
  await removeHelperFiles(o.dataPath, o.deploymentId);
  if (exitCode === 0) return { ok: true, durationMs: elapsed(), output: r.output };
  return fail(
    'COMPOSE_UP_FAILED',
    `self-update compose up failed (exit ${exitCode ?? 'unknown'}): ${lastLine(r.output)}`,
    elapsed(),
    r.output,
  );
}

/** What boot needs from the engine to clear helpers (a Dockerode fits). */
export interface HelperDocker {
  listContainers(opts: { all: boolean; filters: { label: string[] } }): Promise<{ Id: string }[]>;
  getContainer(id: string): { wait(): Promise<unknown>; remove(opts: { force: boolean }): Promise<unknown> };
}

/**
 * Waits (bounded) for helper containers still finishing (compose may still be at work after starting us) and
 * removes the ones left behind. Never throws.
 */
export async function clearHelpers(docker: HelperDocker, waitMs = 60_000): Promise<number> {
  let list: { Id: string }[];
  try {
    list = await docker.listContainers({ all: true, filters: { label: [HELPER_LABEL] } });
  } catch {
    return 0;
  }
  for (const c of list) {
    const ct = docker.getContainer(c.Id);
    await Promise.race([
      ct.wait().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, waitMs).unref()),
    ]);
    await ct.remove({ force: true }).catch(() => undefined);
  }
  return list.length;
}
