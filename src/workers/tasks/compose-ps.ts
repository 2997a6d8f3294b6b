/**
 * @module Worker task: `docker compose ps -a --format json` for one project (compose v2 only; the main thread's
 * dockerode-based verification does not depend on it). Expected failures come back as `{ ok:false }` results.
 */
import { classifyFailure, composeNotFound, detectCompose, parsePsOutput, psArgs, runCompose } from '../../compose/cli.ts';
import type { ComposeInput } from '../../compose/cli.ts';
import type { TaskResult } from '../../lib/task-result.ts';
import type { ComposePsOutput } from '../types.ts';

/** Lists the project's containers, including stopped ones. */
export default async function composePs(input: ComposeInput): Promise<TaskResult<ComposePsOutput>> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };
  if (cmd.version === 1) {
    return {
      ok: false,
      durationMs: elapsed(),
      code: 'COMPOSE_UNSUPPORTED',
      message: `docker-compose ${cmd.versionText} has no "ps --format json"; compose v2 is required`,
      transient: false,
    };
  }

  const timeoutMs = Math.max(0, input.timeoutMs - elapsed());
  const r = await runCompose(cmd, psArgs(cmd, input), { cwd: input.cwd, dockerHost: input.dockerHost, timeoutMs });
  if (r.code !== 0) return { ...classifyFailure(r, 'COMPOSE_PS_FAILED', 'compose ps', input.timeoutMs), durationMs: elapsed() };
  // Warnings go to stderr; only stdout holds the JSON.
  return { ok: true, durationMs: elapsed(), output: r.stderr, containers: parsePsOutput(r.stdout) };
}
