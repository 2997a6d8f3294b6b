/**
 * @module What the deploy machine reports when a run or a check ends (its notice) → the notifier's target and event:
 * which URLs, which event kind, and the fields of the message.
 */
import type { RepoConfig } from '../config/schema.ts';
import type { DeployEvent } from './message.ts';
import type { NotifyResult } from './send.ts';
import type { Notifier, NotifyTarget } from './notifier.ts';

/** The deploy machine's notice, as far as notifications read it (structural: notify/ does not import the machine). */
export interface DeployNotice {
  kind: 'success' | 'failed' | 'rolled_back' | 'check_failed' | 'check_recovered';
  run: {
    trigger: string;
    startedAt: number;
    previousCommit: string | null;
    /** Why the deployment happened (the row's reason; only its summary is sent). */
    reason?: { summary: string } | null;
  } | null;
  error: { stage: string; code: string; message: string } | null;
  commit: string | null;
}

/** Whom to notify for `repo`: its own URLs, the project's global ones, its repeat interval and send timeout. */
export function notifyTargetOf(repo: RepoConfig): NotifyTarget {
  return {
    repoKey: repo.key,
    success: repo.notifications.success,
    failure: repo.notifications.failure,
    global: repo.globalNotifications,
    repeatIntervalMs: repo.notifyRepeatInterval * 1000,
    timeoutMs: repo.timeouts.notify * 1000,
  };
}

/** The event to send for a notice: a recovered check counts as a success, a failed check as a failure. */
export function deployEventOf(repo: RepoConfig, notice: DeployNotice, now: number = Date.now()): DeployEvent {
  const event =
    notice.kind === 'success' || notice.kind === 'check_recovered'
      ? 'success'
      : notice.kind === 'rolled_back'
        ? 'rolled_back'
        : 'failure';
  const run = notice.run;
  return {
    event,
    project: repo.project,
    repository: repo.name,
    commit: notice.commit,
    trigger: run?.trigger ?? 'poll',
    ...(run?.reason?.summary ? { reason: run.reason.summary } : {}),
    stage: notice.error?.stage,
    error: notice.error ? `${notice.error.code}: ${notice.error.message}` : undefined,
    durationMs: run ? now - run.startedAt : undefined,
    rolledBackTo: notice.kind === 'rolled_back' ? (run?.previousCommit ?? undefined) : undefined,
  };
}

/** Notifies about one notice of `repo`; resolves to what was sent (empty when suppressed). Never rejects. */
export async function notifyNotice(
  notifier: Notifier,
  repo: RepoConfig,
  notice: DeployNotice,
): Promise<NotifyResult[]> {
  const result = await notifier.notify(notifyTargetOf(repo), deployEventOf(repo, notice));
  return result.sent;
}
