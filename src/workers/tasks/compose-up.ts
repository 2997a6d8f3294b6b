/**
 * @module Worker task: `docker compose up -d` for one project. Runs in a Piscina worker; expected failures
 * (bad compose file, engine down, timeout) come back as `{ ok:false }` results with compose's captured output.
 * The values of the deploy's decrypted files are read here and masked in that output before it leaves the worker.
 */
import {
  classifyFailure,
  composeNotFound,
  detectCompose,
  pullArgs,
  runCompose,
  upArgs,
  type ComposeOutput,
  type ComposeUpInput,
} from '../../compose/cli.ts';
import { valueMasker } from '../../lib/redact.ts';
import type { TaskResult } from '../../lib/task-result.ts';
import { secretValuesOfFiles } from '../../secrets/values.ts';

/** Applies the compose project: `-p <project> -f … up -d [--remove-orphans] [--pull X] [--build]`. */
export default async function composeUp(input: ComposeUpInput): Promise<TaskResult<ComposeOutput>> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const deadline = Date.now() + input.timeoutMs;
  const remaining = (): number => Math.max(0, deadline - Date.now());

  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };

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
