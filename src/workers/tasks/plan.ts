/**
 * @module Worker task: plans (what `docker compose up -d` would change), the content-label override the apply step
 * passes to compose, and the export of a commit into a scratch directory for a plan that must not touch the live
 * checkout. Expected failures come back as `{ ok:false }` results.
 */
import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import {
  computePlan,
  contentOverride,
  trackedFrom,
  type PlanInput,
  type PlanOutput,
  type Tracked,
} from '../../compose/plan.ts';
import { exportCommit, type ExportOptions } from '../../git/export.ts';
import { toGitError } from '../../git/errors.ts';
import type { TaskResult } from '../../lib/task-result.ts';

/** One of three steps: `plan`, `labels` (write the override to `out`), `export` (a commit into a scratch dir). */
export type PlanTaskInput =
  | ({ step: 'plan' } & PlanInput & Scope)
  | ({ step: 'labels'; out: string } & PlanInput & Scope)
  | ({ step: 'export' } & ExportOptions);

/** The step's result: a plan, the override file written, or the exported commit. */
export type PlanTaskOutput = TaskResult<Partial<PlanOutput> & { file?: string; commit?: string; fetched?: boolean }>;

/** `allFiles`: every file under rootDir is content (a scratch export); else only what git tracks at rootDir's HEAD. */
interface Scope {
  allFiles?: boolean;
  /** Absolute paths of this run's decrypted files: content too (untracked), hashed with the HMAC key. */
  secretFiles?: string[];
}

/** The tracked files of the checkout at `rootDir` (its HEAD); null (every file) when it is not a git checkout. */
async function trackedAt(rootDir: string, secretFiles: readonly string[]): Promise<Tracked | null> {
  const secret = secretFiles
    .map((f) => path.relative(rootDir, f).split(path.sep).join('/'))
    .filter((r) => r && !r.startsWith('../') && !path.isAbsolute(r));
  try {
    return trackedFrom(await git.listFiles({ fs, dir: rootDir, ref: 'HEAD' }), secret);
  } catch {
    return null;
  }
}

export default async function planTask(input: PlanTaskInput): Promise<PlanTaskOutput> {
  if (input.step !== 'export') {
    const tracked = input.allFiles ? null : await trackedAt(input.rootDir, input.secretFiles ?? []);
    return input.step === 'plan' ? computePlan(input, tracked) : contentOverride(input, tracked, input.out);
  }
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
