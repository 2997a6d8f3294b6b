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
  type ComposeOutput,
  type ComposeUpInput,
} from '../../compose/cli.ts';
import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { valueMasker } from '../../lib/redact.ts';
import type { TaskResult } from '../../lib/task-result.ts';
import { secretValuesOfFiles } from '../../secrets/values.ts';

/**
 * A configured compose file must be a regular file inside the checkout (real paths on both sides): a symlink could
 * make compose read, and echo in its errors, any file of the host. Missing files are left to compose's own error.
 */
async function badComposeFile(input: ComposeUpInput): Promise<string | null> {
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

async function firstExisting(dir: string, names: readonly string[]): Promise<string | null> {
  for (const n of names) if (await lstat(resolve(dir, n)).catch(() => null)) return n;
  return null;
}

/** Applies the compose project: `-p <project> -f … up -d [--remove-orphans] [--pull X] [--build]`. */
export default async function composeUp(input: ComposeUpInput): Promise<TaskResult<ComposeOutput>> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const deadline = Date.now() + input.timeoutMs;
  const remaining = (): number => Math.max(0, deadline - Date.now());

  const bad = await badComposeFile(input);
  if (bad) return { ok: false, code: 'COMPOSE_BAD_PATH', message: bad, transient: false, durationMs: elapsed() };

  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };
  // Override files turn compose's default lookup off: name the file that lookup would have found.
  if (input.files.length === 0 && input.overrideFiles?.length) {
    const found = await firstExisting(input.cwd, DEFAULT_COMPOSE_FILES);
    input = found ? { ...input, files: [found] } : { ...input, overrideFiles: [] };
  }

  const mask = input.secretFiles?.length ? valueMasker(await secretValuesOfFiles(input.secretFiles)) : undefined;
  const run = { cwd: input.cwd, dockerHost: input.dockerHost, mask };
  let pullOutput = '';
  // Compose v1 has no `up --pull`: an explicit pull gives "always" the same meaning.
  if (cmd.version === 1 && input.pull === 'always') {
    const p = await runCompose(cmd, pullArgs(cmd, input), { ...run, timeoutMs: remaining() });
    if (p.code !== 0)
      return {
        ...classifyFailure(p, 'COMPOSE_PULL_FAILED', 'docker-compose pull', input.timeoutMs),
        durationMs: elapsed(),
      };
    pullOutput = p.output;
  }

  const r = await runCompose(cmd, upArgs(cmd, input), { ...run, timeoutMs: remaining() });
  if (r.code !== 0)
    return { ...classifyFailure(r, 'COMPOSE_UP_FAILED', 'compose up', input.timeoutMs), durationMs: elapsed() };
  return { ok: true, durationMs: elapsed(), output: pullOutput + r.output };
}
