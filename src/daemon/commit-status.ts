/**
 * @module Deploy results back to the forge as commit statuses (a repository's `commit_status`). Listens to the
 * supervisor's activity events and hands statuses to the queue (src/forge/queue.ts), which records every delivery on
 * its deployment (`deployments.commit_statuses`); a deploy never waits for a forge.
 *
 * - `deployment.started` → `pending` ("deploying"). A run whose commit is not known yet (an API deploy of the branch
 *   head) posts it as soon as its row has the commit: read on the run's next event (its pull step's log, a state).
 * - `deployment.finished`: success → `success` "deployed in 12 s"; skipped → `success` "unchanged"; failed →
 *   `failure` "failed at applying (COMPOSE_UP_FAILED)"; rolled_back → `failure` "failed at verifying; rolled back to
 *   abc1234"; a failed commit that is now pinned adds "pinned: not redeployed until a new commit or unpin";
 *   interrupted (after a `pending`) → `error` "interrupted".
 * - The target URL is the deployment's page in the web UI, `<SHIPARR_PUBLIC_URL>/#/deployment/<id>` (none without it).
 */
import type { Logger } from 'pino';
import type { RepoConfig } from '../config/schema.ts';
import type { ActivityEvent, CommitStatusState, Deployment } from '../domain/types.ts';
import { CommitStatusQueue, type ForgeAnswer, type QueueOptions } from '../forge/queue.ts';
import type { StatusRequest } from '../forge/requests.ts';
import type { Store } from '../store/index.ts';

/** Runs whose commit is awaited at most (the oldest is forgotten beyond). */
const AWAITING_MAX = 1_000;
/** Longest error-answer body read from a forge. */
const BODY_MAX = 16 * 1024;

/** The note added to a failure whose commit is pinned. */
const PINNED_NOTE = 'pinned: not redeployed until a new commit or unpin';

/** Test hooks: shorter back-off (and more tries to span the same time) for end-to-end tests. */
export type CommitStatusTiming = Pick<QueueOptions, 'baseDelayMs' | 'maxDelayMs' | 'maxAttempts'>;

/** Posts one status request with the global fetch. */
async function send(req: StatusRequest, signal: AbortSignal): Promise<ForgeAnswer> {
  const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: text.slice(0, BODY_MAX) };
}

const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 7) : '-');

/** `failed at applying (COMPOSE_UP_FAILED)` from a row's `stage: CODE: message` error. */
function failedAt(d: Deployment): string {
  const m = /^([A-Za-z]+): ([A-Z][A-Z0-9_]+):/.exec(d.error ?? '');
  const stage = m?.[1] ?? d.stage ?? 'an unknown stage';
  return `failed at ${stage}${m?.[2] ? ` (${m[2]})` : ''}`;
}

/** Seconds, as the success line says them ("12 s", "2 min 5 s"). */
function took(ms: number | null): string {
  if (ms === null) return '';
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? ` in ${s} s` : ` in ${Math.floor(s / 60)} min ${s % 60} s`;
}

/**
 * Subscribes the commit-status poster to the supervisor's events; `close(graceMs)` (from the ordered shutdown) gives
 * deliveries under way that long, then drops and records the rest.
 */
export function startCommitStatuses(deps: {
  supervisor: {
    subscribe(listener: (e: ActivityEvent) => void): () => void;
    repoConfig(key: string): RepoConfig | undefined;
  };
  store: Pick<Store, 'getDeployment' | 'getRepository' | 'recordCommitStatus'>;
  log: Logger;
  publicUrl?: string;
  timing?: CommitStatusTiming;
}): { close(graceMs: number): Promise<void> } {
  const { store, supervisor } = deps;
  const log = deps.log.child({ component: 'commit-status' });
  const queue = new CommitStatusQueue({
    send,
    record: (id, r) => store.recordCommitStatus(id, r),
    log,
    ...deps.timing,
  });
  // Runs that started without a known commit (deployment id → repository key), and runs that posted `pending`.
  const awaiting = new Map<number, string>();
  const pendingSent = new Set<number>();

  const post = (repo: RepoConfig, id: number, commit: string, state: CommitStatusState, description: string) => {
    const target = repo.commitStatus;
    if (!target) return;
    queue.enqueue({
      deploymentId: id,
      target,
      commit,
      status: {
        state,
        description,
        ...(deps.publicUrl ? { targetUrl: `${deps.publicUrl}/#/deployment/${id}` } : {}),
      },
    });
  };
  const pending = (repo: RepoConfig, id: number, commit: string) => {
    awaiting.delete(id);
    pendingSent.add(id);
    if (pendingSent.size > AWAITING_MAX) pendingSent.delete(pendingSent.values().next().value as number);
    post(repo, id, commit, 'pending', `deploying ${short(commit)}`);
  };
  // The pull step writes the commit right after its log line: read the row once that step has returned.
  const lookLater = (id: number) =>
    setImmediate(() => {
      const key = awaiting.get(id);
      const repo = key === undefined ? undefined : supervisor.repoConfig(key);
      const commit = store.getDeployment(id)?.commit;
      if (repo && commit) pending(repo, id, commit);
    });

  const finished = (repo: RepoConfig, e: Extract<ActivityEvent, { type: 'deployment.finished' }>) => {
    const id = e.deploymentId;
    awaiting.delete(id);
    const sentPending = pendingSent.delete(id);
    const row = store.getDeployment(id);
    const commit = e.commit ?? row?.commit ?? null;
    if (!commit || !row) return;
    const pinned = () => store.getRepository(repo.key)?.pinnedCommit === commit;
    const withPin = (text: string) => (pinned() ? `${text}; ${PINNED_NOTE}` : text);
    switch (e.status) {
      case 'success':
        return post(repo, id, commit, 'success', `deployed${took(e.durationMs ?? row.durationMs)}`);
      case 'skipped':
        return post(repo, id, commit, 'success', 'unchanged');
      case 'failed':
        return post(repo, id, commit, 'failure', withPin(failedAt(row)));
      case 'rolled_back':
        return post(
          repo,
          id,
          commit,
          'failure',
          withPin(`${failedAt(row)}; rolled back to ${short(row.rolledBackTo ?? row.previousCommit)}`),
        );
      case 'interrupted':
        if (sentPending) post(repo, id, commit, 'error', 'interrupted');
        return;
      default:
        return;
    }
  };

  const unsubscribe = supervisor.subscribe((e) => {
    if (e.type === 'deployment.started') {
      const repo = supervisor.repoConfig(e.repoKey);
      if (!repo?.commitStatus) return;
      const commit = e.commit ?? store.getDeployment(e.deploymentId)?.commit ?? null;
      if (commit) return pending(repo, e.deploymentId, commit);
      awaiting.set(e.deploymentId, e.repoKey);
      if (awaiting.size > AWAITING_MAX) awaiting.delete(awaiting.keys().next().value as number);
    } else if (e.type === 'deployment.log') {
      if (awaiting.has(e.deploymentId)) lookLater(e.deploymentId);
    } else if (e.type === 'state') {
      for (const [id, key] of awaiting) if (key === e.repoKey) lookLater(id);
    } else if (e.type === 'deployment.finished') {
      const repo = supervisor.repoConfig(e.repoKey);
      if (repo?.commitStatus) finished(repo, e);
    }
  });

  return {
    close: async (graceMs) => {
      unsubscribe();
      await queue.close(graceMs);
    },
  };
}
