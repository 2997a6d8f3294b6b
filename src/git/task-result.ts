/** @module Turns a git operation into a worker TaskResult: expected failures become `{ ok:false }`, never throws. */
import type { TaskResult } from '../lib/task-result.ts';
import { toGitError, type GitErrorCode } from './errors.ts';

/** Runs `fn`, timing it; any error is mapped to a secret-free failure result with a stable code. */
export async function gitTaskResult<T extends object>(
  fn: () => Promise<T>,
  fallback: GitErrorCode,
  secrets: readonly (string | undefined)[],
): Promise<TaskResult<T>> {
  const started = performance.now();
  const durationMs = () => Math.round(performance.now() - started);
  try {
    const out = await fn();
    return { ok: true, durationMs: durationMs(), ...out };
  } catch (err) {
    const e = toGitError(err, fallback, secrets);
    return { ok: false, durationMs: durationMs(), code: e.code, message: e.message, transient: e.transient };
  }
}
