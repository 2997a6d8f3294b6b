/**
 * @module Worker task: `docker compose up -d` for one project. Runs in a Piscina worker; expected failures
 * (bad compose file, engine down, timeout) come back as `{ ok:false }` results with compose's captured output.
 * The values of the deploy's decrypted files are read here and masked in that output before it leaves the worker.
 */
import {
  classifyFailure,
  composeNotFound,
  DEFAULT_COMPOSE_FILES,
  detectCompose,
  pullArgs,
  runCompose,
  upArgs,
  type ComposeCommand,
  type ComposeFailure,
  type ComposeOutput,
  type ComposeUpInput,
  type RunOptions,
} from '../../compose/cli.ts';
import type { ExecResult } from '../../lib/exec.ts';
import { tmpdir } from 'node:os';
import { createPrivateDockerConfig, registriesOfImages } from '../../registry/docker-config.ts';
import { lstat, realpath } from 'node:fs/promises';
import type { MessagePort } from 'node:worker_threads';
import { isAbsolute, relative, resolve } from 'node:path';
import { valueMasker } from '../../lib/redact.ts';
import type { TaskResult } from '../../lib/task-result.ts';
import { secretValuesOfFiles } from '../../secrets/values.ts';

/**
 * A configured compose file must be a regular file inside the checkout (real paths on both sides): a symlink could
 * make compose read, and echo in its errors, any file of the host. Missing files are left to compose's own error.
 */
export async function badComposeFile(input: Pick<ComposeUpInput, 'rootDir' | 'cwd' | 'files'>): Promise<string | null> {
  const rootDir = resolve(input.rootDir ?? input.cwd);
  const realRoot = await realpath(rootDir).catch(() => rootDir);
  for (const f of input.files) {
    const abs = resolve(input.cwd, f);
    const st = await lstat(abs).catch(() => null);
    if (!st) continue;
    if (st.isSymbolicLink())
      return `compose file ${f} is a symlink; compose files must be regular files in the checkout`;
    const real = await realpath(abs).catch(() => abs);
    const rel = relative(realRoot, real);
    if (rel === '' || rel === '..' || rel.startsWith('../') || isAbsolute(rel))
      return `compose file ${f} is outside the checkout (through a symlinked directory)`;
  }
  return null;
}

/** The override file compose adds to the default file it found (DEFAULT_COMPOSE_FILES), in its lookup order. */
const DEFAULT_OVERRIDES = [
  'compose.override.yaml',
  'compose.override.yml',
  'docker-compose.override.yml',
  'docker-compose.override.yaml',
];

/**
 * Any `-f` turns compose's own file lookup off: with generated override files and no configured compose files, the
 * files compose would have found in cwd are named explicitly (the first default file, then the first override file).
 */
async function withOverrides(input: ComposeUpInput): Promise<ComposeUpInput | string> {
  const extra = input.overrideFiles ?? [];
  if (extra.length === 0) return input;
  const notAbsolute = extra.find((f) => !isAbsolute(f));
  if (notAbsolute !== undefined) return `generated compose file ${notAbsolute} is not an absolute path`;
  if (input.files.length > 0) return input;
  const present = async (names: string[]) => {
    for (const n of names) if ((await lstat(resolve(input.cwd, n)).catch(() => null))?.isFile()) return n;
    return undefined;
  };
  const main = await present(DEFAULT_COMPOSE_FILES);
  if (main === undefined) return `no compose file (${DEFAULT_COMPOSE_FILES.join(', ')}) in the compose directory`;
  const override = await present(DEFAULT_OVERRIDES);
  return { ...input, files: override === undefined ? [main] : [main, override] };
}

/** Live lines are sent at least this often while compose prints, or as soon as this many are waiting. */
const LIVE_BATCH_MS = 100;
const LIVE_BATCH_LINES = 50;

/** Batches lines to `port` (every LIVE_BATCH_MS or LIVE_BATCH_LINES), so a noisy compose cannot flood the loop. */
function liveBatcher(port: MessagePort | undefined): { push(line: string): void; end(): void } | undefined {
  if (!port) return undefined;
  let batch: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (batch.length === 0) return;
    port.postMessage({ lines: batch });
    batch = [];
  };
  return {
    push(line) {
      batch.push(line);
      if (batch.length >= LIVE_BATCH_LINES) flush();
      else timer ??= setTimeout(flush, LIVE_BATCH_MS);
    },
    end() {
      flush();
      port.postMessage({ end: true });
      port.close();
    },
  };
}

/**
 * Applies the compose project: `-p <project> -f … [-f <override>…] up -d [--remove-orphans] [--pull X] [--build]`.
 */
export default async function composeUp(input: ComposeUpInput): Promise<TaskResult<ComposeOutput>> {
  const live = liveBatcher(input.progress);
  try {
    return await apply(input, live && ((line: string) => live.push(line)));
  } finally {
    live?.end();
  }
}

async function apply(raw: ComposeUpInput, onLine?: (line: string) => void): Promise<TaskResult<ComposeOutput>> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const deadline = Date.now() + raw.timeoutMs;
  const remaining = (): number => Math.max(0, deadline - Date.now());

  const prepared = await withOverrides(raw);
  if (typeof prepared === 'string')
    return { ok: false, code: 'COMPOSE_BAD_PATH', message: prepared, transient: false, durationMs: elapsed() };
  const input = prepared;
  const bad = await badComposeFile(input);
  if (bad) return { ok: false, code: 'COMPOSE_BAD_PATH', message: bad, transient: false, durationMs: elapsed() };

  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };

  const fileMask = input.secretFiles?.length ? valueMasker(await secretValuesOfFiles(input.secretFiles)) : undefined;
  // Registry passwords are masked here too: this worker thread's secret registry is empty.
  const authMask = registryMask(input.registryAuths);
  const mask = fileMask && authMask ? (t: string) => authMask(fileMask(t)) : (fileMask ?? authMask);
  const base = {
    cwd: input.cwd,
    dockerHost: input.dockerHost,
    engineEnv: input.engineEnv,
    mask,
    ...(onLine ? { onLine } : {}),
  };
  const registries = await privateRegistryConfig(cmd, input, base, remaining());
  const run = registries ? { ...base, dockerConfig: registries.dir } : base;
  const failed = (r: ExecResult, code: string, what: string) => ({
    ...registryAuthFailure(classifyFailure(r, code, what, input.timeoutMs), r.output, registries?.used ?? []),
    durationMs: elapsed(),
  });
  try {
    let pullOutput = '';
    // Compose v1 has no `up --pull`: an explicit pull gives "always" the same meaning.
    if (cmd.version === 1 && input.pull === 'always') {
      const p = await runCompose(cmd, pullArgs(cmd, input), { ...run, timeoutMs: remaining() });
      if (p.code !== 0) return failed(p, 'COMPOSE_PULL_FAILED', 'docker-compose pull');
      pullOutput = p.output;
    }
    // An image update: the services whose tag moved are pulled first, whatever the pull policy (only those).
    if (input.pullServices?.length) {
      const p = await runCompose(cmd, pullArgs(cmd, input, input.pullServices), { ...run, timeoutMs: remaining() });
      if (p.code !== 0) return failed(p, 'COMPOSE_PULL_FAILED', `compose pull ${input.pullServices.join(' ')}`);
      pullOutput += p.output;
    }

    const r = await runCompose(cmd, upArgs(cmd, input), { ...run, timeoutMs: remaining() });
    if (r.code !== 0) return failed(r, 'COMPOSE_UP_FAILED', 'compose up');
    return { ok: true, durationMs: elapsed(), output: pullOutput + r.output };
  } finally {
    await registries?.remove();
  }
}

/** A masker for the registry passwords (and their base64 `user:password` forms) of the input, if any. */
function registryMask(auths: ComposeUpInput['registryAuths']): ((text: string) => string) | undefined {
  const list = Object.values(auths ?? {});
  if (!list.length) return undefined;
  return valueMasker(
    list.flatMap((c) => [c.password, Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')]),
    4,
  );
}

/**
 * With registry credentials in the input: the project's images (`config --images`), and a private DOCKER_CONFIG
 * holding the credentials of their registries only (all of them when the images cannot be listed). Undefined when
 * none of the credentials serves the project.
 */
async function privateRegistryConfig(
  cmd: ComposeCommand,
  input: ComposeUpInput,
  run: Omit<RunOptions, 'timeoutMs'>,
  timeoutMs: number,
): Promise<{ dir: string; used: string[]; remove(): Promise<void> } | undefined> {
  const auths = input.registryAuths ?? {};
  if (!Object.keys(auths).length) return undefined;
  const list = await runCompose(cmd, [...pullArgs(cmd, input).slice(0, -1), 'config', '--images'], {
    ...run,
    onLine: undefined,
    timeoutMs: Math.min(timeoutMs, 60_000),
  });
  const images =
    list.code === 0
      ? registriesOfImages(
          list.stdout
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean),
        )
      : null;
  const used = Object.keys(auths).filter((r) => images === null || images.has(r));
  if (!used.length) return undefined;
  const chosen = Object.fromEntries(used.map((r) => [r, auths[r]!]));
  const created = await createPrivateDockerConfig(input.scratchDir ?? tmpdir(), chosen);
  return { ...created, used };
}

const AUTH_FAILURE =
  /unauthorized|authentication required|no basic auth credentials|pull access denied|denied: requested access|incorrect username or password/i;

/**
 * A pull refused by a registry becomes REGISTRY_AUTH naming the registry (from the URL in compose's error, else the
 * only registry with credentials), instead of compose's bare message.
 */
function registryAuthFailure(f: ComposeFailure, output: string, withCredentials: string[]): ComposeFailure {
  if (f.code === 'DOCKER_UNREACHABLE' || f.code === 'COMPOSE_TIMEOUT' || f.code === 'COMPOSE_ABORTED') return f;
  if (!AUTH_FAILURE.test(output)) return f;
  let host = /https?:\/\/([^/\s"']+)\/v2\//.exec(output)?.[1];
  if (host === 'registry-1.docker.io' || host === 'index.docker.io') host = 'docker.io';
  host ??=
    withCredentials.find((r) => output.includes(r)) ?? (withCredentials.length === 1 ? withCredentials[0] : undefined);
  if (!host) return f;
  const message = withCredentials.includes(host)
    ? `registry ${host} refused the credentials while pulling images (${f.message})`
    : `registry ${host} refused to serve images without credentials: add it to the project file's registries (${f.message})`;
  return { ...f, code: 'REGISTRY_AUTH', message, transient: false };
}
