/**
 * @module Worker task: plans (what `docker compose up -d` would change), the content-label override the apply step
 * passes to compose, and the export of a commit into a scratch directory for a plan that must not touch the live
 * checkout. Expected failures come back as `{ ok:false }` results.
 */
import { computePlan, contentOverride, type PlanInput, type PlanOutput } from '../../compose/plan.ts';
import { exportCommit, type ExportOptions } from '../../git/export.ts';
import { toGitError } from '../../git/errors.ts';
import type { TaskResult } from '../../lib/task-result.ts';

/** One of three steps: `plan`, `labels` (write the override to `out`), `export` (a commit into a scratch dir). */
export type PlanTaskInput =
  ({ step: 'plan' } & PlanInput) | ({ step: 'labels'; out: string } & PlanInput) | ({ step: 'export' } & ExportOptions);

/** The step's result: a plan, the override file written, or the exported commit. */
export type PlanTaskOutput = TaskResult<Partial<PlanOutput> & { file?: string; commit?: string; fetched?: boolean }>;

export default async function planTask(input: PlanTaskInput): Promise<PlanTaskOutput> {
  if (input.step === 'plan') return computePlan(input);
  if (input.step === 'labels') return contentOverride(input, input.out);
  const started = performance.now();
  try {
    const r = await exportCommit(input);
    return { ok: true, durationMs: Math.round(performance.now() - started), ...r };
  } catch (err) {
    const e = toGitError(err, 'GIT_SYNC_FAILED', [input.token]);
    return {
      ok: false,
      durationMs: Math.round(performance.now() - started),
      code: e.code,
      message: e.message,
      transient: e.transient,
    };
  }
}
