/**
 * @module Worker task: `docker compose down --remove-orphans` for one project (volumes are kept). Expected
 * failures come back as `{ ok:false }` results.
 */
import { classifyFailure, composeNotFound, detectCompose, downArgs, runCompose, type ComposeInput, type ComposeOutput } from '../../compose/cli.ts';
import type { TaskResult } from '../../lib/task-result.ts';

/** Stops and removes the project's containers and networks. */
export default async function composeDown(input: ComposeInput): Promise<TaskResult<ComposeOutput>> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const cmd = await detectCompose({ timeoutMs: Math.min(15_000, input.timeoutMs) });
  if (!cmd) return { ...composeNotFound(), durationMs: elapsed() };

  const timeoutMs = Math.max(0, input.timeoutMs - elapsed());
  const r = await runCompose(cmd, downArgs(cmd, input), { cwd: input.cwd, dockerHost: input.dockerHost, timeoutMs });
  if (r.code !== 0) return { ...classifyFailure(r, 'COMPOSE_DOWN_FAILED', 'compose down', input.timeoutMs), durationMs: elapsed() };
  return { ok: true, durationMs: elapsed(), output: r.output };
}
