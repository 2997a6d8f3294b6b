/**
 * @module The read view of a repository (RepoStatus) as the API shows it: its row, the supervisor's entry for it and
 * the snapshot of its deploy actor, when it has one.
 */
import type { SnapshotFrom } from 'xstate';
import type { RepoStatus } from '../domain/types.ts';
import type { deployMachine } from '../machines/deploy-machine.ts';
import type { RepositoryRow } from '../store/types.ts';
import { displayState, type RepoEntry } from './supervisor-machine.ts';

type DeploySnapshot = SnapshotFrom<typeof deployMachine>;

/** The deploy machine's states in which a repository is busy (a check or a deploy runs). */
export const BUSY = new Set([
  'checking',
  'pulling',
  'decrypting',
  'planning',
  'applying',
  'verifying',
  'rollingBack',
  'notifying',
  'finishing',
]);
const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

/** `entry` absent: the repository is not configured (any more); `snap` absent: its actor is restarting or failed. */
export function repoStatus(
  row: RepositoryRow,
  entry: RepoEntry | undefined,
  snap: DeploySnapshot | undefined,
): RepoStatus {
  const ctx = snap?.status === 'active' ? snap.context : undefined;
  const repo = entry?.repo;
  const state = entry ? displayState(entry, snap) : row.active ? 'stopped' : 'removed';
  return {
    id: row.id,
    key: row.key,
    project: row.project,
    name: row.name,
    url: repo?.url ?? row.url,
    branch: repo?.branch ?? row.branch,
    path: repo?.path ?? row.path,
    composeProject: repo?.composeProject ?? '',
    checkInterval: repo?.checkInterval ?? row.checkInterval,
    active: row.active,
    state,
    since: entry ? new Date(entry.since).toISOString() : new Date(0).toISOString(),
    busy: BUSY.has(state),
    currentDeploymentId: ctx?.run?.deploymentId ?? null,
    lastDeployedCommit: ctx?.lastDeployedCommit ?? row.lastCommit,
    lastDeployedAt: row.lastDeployedAt,
    lastCheckAt: iso(ctx?.lastCheckAt) ?? row.lastCheckedAt,
    nextCheckAt: iso(ctx?.nextCheckAt),
    lastError: entry?.failed
      ? { stage: 'supervisor', code: 'ACTOR_FAILED', message: entry.failed }
      : ctx?.lastError
        ? { stage: ctx.lastError.stage, code: ctx.lastError.code, message: ctx.lastError.message }
        : null,
    pinnedCommit: ctx?.pinnedCommit ?? row.pinnedCommit,
    suspended: ctx?.suspended ?? row.suspended ?? false,
    attempt: ctx?.attempt ?? 0,
    restarts: entry?.restarts ?? 0,
    // Filled in by the HTTP layer from one cached engine list (see the supervisor's containerCounts).
    containers: null,
    lastCommitSubject: row.lastCommitSubject,
  };
}
