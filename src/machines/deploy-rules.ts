/**
 * @module The deploy machine's rules, as pure functions of its context: when a head is deployed, how long to wait,
 * when a failure rolls back, and what a finished run means. The chart in deploy-machine.ts says when they apply.
 */
import type { DeployContext, DeployTrigger, Run, Stage, StepError } from './types.ts';

/** What the notifying state reports. */
export interface Notice {
  kind: 'success' | 'failed' | 'rolled_back' | 'check_failed' | 'check_recovered';
  run: Run | null;
  error: StepError | null;
  commit: string | null;
}

/** The context these rules read and write: the stored one plus the notice and whether a rollback completed. */
export type RunContext = DeployContext & { notice: Notice | null; rolledBack: boolean };

/** A value the current state relies on; its absence is a bug in the chart, not a failed deploy. */
export function present<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`deploy machine: no ${what} in this state`);
  return value;
}
export const activeRun = (ctx: Pick<DeployContext, 'run'>): Run => present(ctx.run, 'run');

export function newRun(
  ctx: DeployContext,
  startedAt: number,
  r: { trigger: DeployTrigger; forced: boolean; deploymentId?: number | null; commit?: string | null },
): Run {
  const { trigger, forced, deploymentId = null, commit = null } = r;
  const previousCommit = ctx.lastDeployedCommit;
  return {
    deploymentId,
    trigger,
    forced,
    commit,
    previousCommit,
    startedAt,
    decrypted: [],
    error: null,
    rollbackError: null,
    outcome: null,
  };
}

/** Turns whatever an effect rejected with into a typed, secret-free StepError for the given stage. */
export function toStepError(stage: Stage, error: unknown): StepError {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; message?: unknown; transient?: unknown; output?: unknown; stage?: unknown };
    return {
      stage,
      code: typeof e.code === 'string' ? e.code : 'INTERNAL_ERROR',
      message: typeof e.message === 'string' ? e.message : String(error),
      transient: e.transient === true,
      ...(typeof e.output === 'string' && e.output ? { output: e.output } : {}),
    };
  }
  return { stage, code: 'INTERNAL_ERROR', message: String(error), transient: false };
}

export const timeoutError = (stage: Stage, seconds: number): StepError => ({
  stage,
  code: 'STAGE_TIMEOUT',
  message: `${stage} did not finish within ${seconds} s`,
  transient: true,
});

/**
 * Milliseconds until the next check: the poll interval (with the repo's fixed jitter of ±10 %),
 * or exponential backoff after transient failures, capped at 4× the interval.
 */
export function pollDelayMs(ctx: Pick<DeployContext, 'repo' | 'attempt'>, jitter: number): number {
  const intervalMs = ctx.repo.checkInterval * 1000;
  const factor = 0.9 + 0.2 * Math.min(1, Math.max(0, jitter));
  if (ctx.attempt <= 0) return Math.round(intervalMs * factor);
  const base = Math.min(intervalMs, 5_000);
  const backoff = Math.min(base * 2 ** (ctx.attempt - 1), 4 * intervalMs);
  return Math.round(backoff * factor);
}

/** Which outcome a check leads to, given the remote head. Exported for tests and the API. */
export function decideDeploy(ctx: DeployContext, head: string): 'deploy' | 'unchanged' | 'pinned' {
  if (ctx.run?.forced) return 'deploy';
  if (ctx.pinnedCommit && head === ctx.pinnedCommit) return 'pinned';
  if (head !== ctx.lastDeployedCommit || ctx.repo.configHash !== ctx.lastConfigHash) return 'deploy';
  return 'unchanged';
}

/** A rollback is possible to a different, known-good commit, and only for a failure that retrying would not fix. */
export function canRollback(ctx: DeployContext, err: StepError): boolean {
  const run = ctx.run;
  // An image update redeploys the same commit: its rollback is to the images the last success of that commit ran.
  const otherTarget = run?.previousCommit !== run?.commit || run?.trigger === 'image-update';
  return Boolean(ctx.repo.rollback && run && run.previousCommit && otherTarget && !err.transient);
}

/** A check without a run failed: back off (when transient) and report it. */
export const checkFailed = (ctx: RunContext, error: StepError): Partial<RunContext> => ({
  lastError: error,
  attempt: error.transient ? ctx.attempt + 1 : 0,
  notice: { kind: 'check_failed', run: null, error, commit: ctx.lastDeployedCommit },
});

/** The verify failure of a Swarm stack whose update Swarm rolled back (compose/swarm.ts `watchStack`). */
const SWARM_ROLLED_BACK = 'SWARM_ROLLED_BACK';

/** Outcome bookkeeping when a run ends: last good commit, pin, backoff attempt, notice. */
export function conclude(ctx: RunContext): Partial<RunContext> {
  const run = activeRun(ctx);
  // Nothing to change: the commit counts as deployed (the next poll must not try it again), nobody is notified.
  if (!run.error && run.skipped) {
    return {
      run: { ...run, outcome: 'skipped' },
      lastDeployedCommit: run.commit,
      lastConfigHash: ctx.repo.configHash,
      pinnedCommit: null,
      attempt: 0,
      lastError: null,
      notice: null,
    };
  }
  if (!run.error) {
    const done: Run = { ...run, outcome: 'success' };
    return {
      run: done,
      lastDeployedCommit: run.commit,
      lastConfigHash: ctx.repo.configHash,
      // A manual rollback pins the commit rolled away from, so the next poll does not redeploy it.
      pinnedCommit:
        run.trigger === 'rollback' && run.previousCommit && run.previousCommit !== run.commit
          ? run.previousCommit
          : null,
      attempt: 0,
      lastError: null,
      notice: { kind: 'success', run: done, error: null, commit: run.commit },
    };
  }
  // Swarm rolled the update back itself (mode swarm): the previous spec runs even when Shiparr had no rollback to do.
  const swarmRolledBack = run.error.code === SWARM_ROLLED_BACK && !ctx.rolledBack && !run.rollbackError;
  const rolledBack = (ctx.rolledBack && !run.rollbackError) || swarmRolledBack;
  const outcome = rolledBack ? 'rolled_back' : 'failed';
  const done: Run = { ...run, outcome };
  const transient = run.error.transient && !rolledBack;
  return {
    run: done,
    // A transient failure (network, engine down) is retried with backoff; anything else pins the commit.
    // A failed image update says nothing against the commit (the image watch remembers the digest that failed).
    pinnedCommit: transient || !run.commit || run.trigger === 'image-update' ? ctx.pinnedCommit : run.commit,
    attempt: transient ? ctx.attempt + 1 : 0,
    lastError: run.error,
    notice: { kind: outcome, run: done, error: run.error, commit: run.commit },
  };
}
