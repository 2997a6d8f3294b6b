/**
 * @module The SQLite store (better-sqlite3, WAL): projects, repositories with their persisted actor state,
 * and deployment history. Synchronous by design: one process, one writer (the actor layer); every multi-row
 * write is one transaction, so a crash at any moment loses no finished record.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { maskSecrets } from '../lib/redact.ts';
import { StoreError } from './errors.ts';
import { LOG_STORED_MAX_BYTES, fitUtf8, truncationMarker } from './log-cap.ts';
import { assertNotNewer, migrate } from './migrations.ts';
import type {
  ActionRecord,
  CommitStatusRecord,
  CreateActionInput,
  CreateDeploymentInput,
  Deployment,
  DeploymentPatch,
  DeploymentStatus,
  DeploymentTrigger,
  FinishDeploymentInput,
  ImageWatchEntry,
  ImageWatchStatus,
  PlaintextFile,
  DeploymentReason,
  ServiceImage,
  ServicePlan,
} from '../domain/types.ts';
import type {
  DeploymentPage,
  ListDeploymentsOptions,
  PendingPlaintext,
  ProjectRow,
  PruneResult,
  RepositoryRow,
  RepositoryStatePatch,
  SyncProjectInput,
  SyncResult,
} from './types.ts';

/** The error recorded on deployments found open at boot. */
export const INTERRUPTED_ERROR = 'interrupted: Shiparr stopped while this deployment was in progress';

/** Busy timeout (ms): how long a write waits for another connection's lock (e.g. the CLI) before failing. */
const BUSY_TIMEOUT_MS = 5000;
const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;
/** Rows one history-pruning transaction deletes at most (short write locks; the event loop runs in between). */
const PRUNE_BATCH = 100;
/** Newest rows of a repository searched for plaintext records when deciding whether a file is Shiparr's. */
const OWNED_LOOKBACK = 5;

const OPEN_STATUSES: ReadonlySet<string> = new Set<DeploymentStatus>(['pending', 'running']);
const FINAL_STATUSES: ReadonlySet<string> = new Set<DeploymentStatus>([
  'success',
  'failed',
  'rolled_back',
  'interrupted',
  'skipped',
]);
const TRIGGERS: ReadonlySet<string> = new Set<DeploymentTrigger>([
  'poll',
  'webhook',
  'api',
  'cli',
  'boot',
  'config',
  'rollback',
  'retry',
  'self-update',
  'image-update',
]);

export interface StoreOptions {
  /** Clock for timestamps and durations (tests pin it; defaults to the system clock). */
  now?: () => Date;
}

type Params = Record<string, unknown>;
type Flag = 0 | 1;

interface RawProject {
  id: number;
  name: string;
  description: string | null;
  file: string;
  active: number;
  created_at: string;
  updated_at: string;
}

interface RawRepository {
  id: number;
  project_id: number;
  project: string;
  name: string;
  key: string;
  url: string;
  branch: string;
  path: string;
  local_path: string;
  check_interval: number;
  active: number;
  last_commit: string | null;
  last_deployed_at: string | null;
  pinned_commit: string | null;
  suspended: number | null;
  last_checked_at: string | null;
  last_seen_commit: string | null;
  config_hash: string | null;
  notify_state: string | null;
  created_at: string;
  updated_at: string;
  last_commit_subject: string | null;
}

/** The fields of a deployment a status view needs (see `latestDeployments`). */
type LatestDeployment = Pick<Deployment, 'id' | 'repositoryId' | 'status' | 'commit' | 'startedAt' | 'finishedAt'>;
type RawLatestDeployment = Pick<
  RawDeployment,
  'id' | 'repository_id' | 'status' | 'commit_hash' | 'started_at' | 'finished_at'
>;

/** The columns of a repository row that syncConfig compares. */
type SyncRepository = Pick<
  RawRepository,
  | 'id'
  | 'project_id'
  | 'project'
  | 'name'
  | 'key'
  | 'url'
  | 'branch'
  | 'path'
  | 'local_path'
  | 'check_interval'
  | 'active'
>;

interface RawDeployment {
  id: number;
  repository_id: number;
  repo_key: string;
  commit_hash: string | null;
  status: DeploymentStatus;
  trigger: DeploymentTrigger;
  stage: string | null;
  error: string | null;
  previous_commit: string | null;
  rolled_back_to: string | null;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  config_hash: string | null;
  notifications: string | null;
  self_update: number;
  log_bytes: number;
  logs_truncated: number;
  triggered_by: string | null;
  reason: string | null;
  plan: string | null;
  service_images: string | null;
  commit_subject: string | null;
  commit_statuses: string | null;
}

interface RawAction {
  id: number;
  repository_id: number;
  action: ActionRecord['action'];
  service: string | null;
  status: ActionRecord['status'];
  error: string | null;
  triggered_by: string | null;
  started_at: string;
  finished_at: string;
}

/** The columns of a deployment a write needs to check before changing it. */
interface DeploymentHead {
  repository_id: number;
  status: DeploymentStatus;
  started_at: string;
  finished_at: string | null;
  commit_hash: string | null;
  config_hash: string | null;
}

// The subject of the last deployed commit comes from the newest successful deployment of that commit.
const REPO_SELECT = `SELECT r.*, p.name AS project,
    (SELECT d.commit_subject FROM deployments d
      WHERE d.repository_id = r.id AND d.status = 'success' AND d.commit_hash = r.last_commit
      ORDER BY d.id DESC LIMIT 1) AS last_commit_subject
  FROM repositories r JOIN projects p ON p.id = r.project_id`;
/** Commit-status records kept per deployment. */
const COMMIT_STATUSES_MAX = 20;
/** Longest commit subject stored. */
const SUBJECT_MAX = 200;
const ACTION_SELECT = 'SELECT * FROM actions';
const DEPLOYMENT_SELECT = `
  SELECT d.id, d.repository_id, r.key AS repo_key, d.commit_hash, d.status, d."trigger" AS "trigger", d.stage, d.error,
         d.previous_commit, d.rolled_back_to, d.started_at, d.finished_at, d.duration_ms, d.config_hash,
         d.notifications, d.self_update, octet_length(d.logs) AS log_bytes, d.logs_truncated, d.triggered_by,
         d.reason, d.plan, d.service_images,
         d.commit_subject, d.commit_statuses
  FROM deployments d JOIN repositories r ON r.id = d.repository_id`;

/**
 * Shiparr's persistent state. Statements are prepared once; all methods are synchronous.
 * Reads of one row return `undefined` when it does not exist; writes to a missing row throw
 * `StoreError('STORE_NOT_FOUND')`. Free text (errors, logs, notification results, URLs) is passed through
 * `maskSecrets` before it is written, as a second line of defence: callers already mask.
 */
export class Store {
  readonly #db: Database.Database;
  readonly #clock: () => Date;
  readonly #journalMode: string;
  readonly #s: Statements;

  /**
   * Wraps an open connection: sets the pragmas (WAL, synchronous=NORMAL, foreign_keys, busy_timeout), refuses a
   * newer schema without writing to the file, then migrates.
   * @throws StoreError STORE_SCHEMA_TOO_NEW | STORE_MIGRATION_FAILED | STORE_OPEN_FAILED
   */
  constructor(db: Database.Database, opts: StoreOptions = {}) {
    this.#db = db;
    this.#clock = opts.now ?? (() => new Date());
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Checked before WAL is switched on: switching rewrites the header of a file we must not touch.
      assertNotNewer(db);
      // In-memory databases stay in 'memory' mode; a filesystem without shared memory may refuse WAL
      // (journalMode then tells the caller, who can warn).
      this.#journalMode = String(db.pragma('journal_mode = WAL', { simple: true }));
      // NORMAL is durable in WAL mode except for the last transactions before a power loss; never corrupts.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_OPEN_FAILED', `cannot use database ${db.name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    migrate(db);
    this.#s = prepareStatements(db);
  }

  /**
   * Opens (creating it and its parent directory if needed) the database at `file`; `':memory:'` for tests.
   * @throws StoreError STORE_OPEN_FAILED | STORE_SCHEMA_TOO_NEW | STORE_MIGRATION_FAILED
   */
  static open(file: string, opts: StoreOptions = {}): Store {
    if (file !== ':memory:' && file !== '') {
      try {
        mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      } catch (err) {
        throw new StoreError(
          'STORE_OPEN_FAILED',
          `cannot create the directory of database ${file}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      throw new StoreError('STORE_OPEN_FAILED', `cannot open database ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      return new Store(db, opts);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The raw connection (tests, diagnostics). Writing through it bypasses the store's invariants. */
  get db(): Database.Database {
    return this.#db;
  }

  /** `wal` normally; `memory` for `:memory:`; anything else means the filesystem refused WAL. */
  get journalMode(): string {
    return this.#journalMode;
  }

  /** Closes the connection (checkpoints the WAL). Safe to call twice. */
  close(): void {
    if (!this.#db.open) return;
    try {
      this.#db.pragma('optimize');
    } catch {
      // Best effort: a failed optimisation must not prevent closing.
    }
    this.#db.close();
  }

  /**
   * Health probe: one cheap read of a real table.
   * @throws StoreError STORE_UNAVAILABLE when the connection is closed or the read fails.
   */
  ping(): void {
    try {
      this.#s.ping.get();
    } catch (err) {
      throw new StoreError('STORE_UNAVAILABLE', `database ${this.#db.name} is unavailable: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  // ── projects & repositories ────────────────────────────────────────────────────────────────────────

  /**
   * Upserts the configured projects and repositories (by name / key) in one transaction. Projects and
   * repositories no longer configured become inactive (never deleted: history stays). Projects named in
   * `keepProjects` (their file is currently invalid) are left exactly as they are, whether or not they appear
   * in `projects`. A returning project or repository is reactivated.
   * @returns repository keys added (new or reactivated), removed (deactivated) and changed.
   * @throws StoreError STORE_INVALID_INPUT on duplicate names/keys or a key that is not `<project>/<name>`.
   */
  syncConfig(projects: readonly SyncProjectInput[], opts: { keepProjects?: readonly string[] } = {}): SyncResult {
    validateSync(projects);
    const keep = new Set(opts.keepProjects ?? []);
    const run = this.#db.transaction((): SyncResult => {
      const now = this.#now();
      const result: SyncResult = { added: [], removed: [], changed: [] };
      const oldProjects = new Map(this.#s.allProjects.all().map((p) => [p.name, p]));
      // The columns compared below only (no per-row commit-subject subquery): at boot this reads every repository.
      const oldRepos = new Map(this.#s.syncRepos.all().map((r) => [r.key, r]));
      const seenProjects = new Set<string>();
      const seenRepos = new Set<string>();

      for (const p of projects) {
        if (keep.has(p.name)) continue;
        seenProjects.add(p.name);
        const description = p.description ?? null;
        const prev = oldProjects.get(p.name);
        let projectId: number;
        if (!prev) {
          projectId = Number(
            this.#s.insertProject.run({ name: p.name, description, file: p.file, now }).lastInsertRowid,
          );
        } else {
          projectId = prev.id;
          if (prev.description !== description || prev.file !== p.file || prev.active !== 1) {
            this.#s.updateProject.run({ id: prev.id, description, file: p.file, now });
          }
        }
        for (const r of p.repositories) {
          seenRepos.add(r.key);
          const row = {
            projectId,
            name: r.name,
            key: r.key,
            url: maskSecrets(r.url),
            branch: r.branch,
            path: r.path,
            localPath: r.localPath,
            checkInterval: r.checkInterval,
            now,
          };
          const old = oldRepos.get(r.key);
          if (!old) {
            this.#s.insertRepo.run(row);
            result.added.push(r.key);
            continue;
          }
          const changed =
            old.project_id !== projectId ||
            old.name !== row.name ||
            old.url !== row.url ||
            old.branch !== row.branch ||
            old.path !== row.path ||
            old.local_path !== row.localPath ||
            old.check_interval !== row.checkInterval;
          if (changed || old.active !== 1) this.#s.updateRepo.run(row);
          if (old.active !== 1) result.added.push(r.key);
          else if (changed) result.changed.push(r.key);
        }
      }

      for (const old of oldProjects.values()) {
        if (old.active === 1 && !seenProjects.has(old.name) && !keep.has(old.name)) {
          this.#s.deactivateProject.run({ id: old.id, now });
        }
      }
      for (const old of oldRepos.values()) {
        if (old.active === 1 && !seenRepos.has(old.key) && !keep.has(old.project)) {
          this.#s.deactivateRepo.run({ id: old.id, now });
          result.removed.push(old.key);
        }
      }
      return result;
    });
    return run.immediate();
  }

  /** Projects by name; inactive ones only when asked. */
  listProjects(opts: { includeInactive?: boolean } = {}): ProjectRow[] {
    return this.#s.listProjects.all({ all: flag(opts.includeInactive) }).map(toProject);
  }

  /** One repository by `<project>/<name>` key (active or not). */
  getRepository(key: string): RepositoryRow | undefined {
    const row = this.#s.repoByKey.get(key);
    return row && toRepository(row);
  }

  /**
   * Every repository's row id by key (active or not), in one query: the supervisor reads the ids of a whole config
   * at once instead of one query per repository.
   */
  repositoryIds(): Map<string, number> {
    return new Map(this.#s.repoIds.all().map((r) => [r.key, r.id]));
  }

  /** One repository by numeric id (active or not). */
  getRepositoryById(id: number): RepositoryRow | undefined {
    const row = this.#s.repoById.get(id);
    return row && toRepository(row);
  }

  /** Repositories ordered by key, optionally of one project; inactive ones only when asked. */
  listRepositories(opts: { project?: string; includeInactive?: boolean } = {}): RepositoryRow[] {
    return this.#s.listRepos.all({ project: opts.project ?? null, all: flag(opts.includeInactive) }).map(toRepository);
  }

  /**
   * Persists actor state of one repository. Fields left `undefined` are untouched; `null` clears
   * (`suspended: null` = follow the config again).
   * @throws StoreError STORE_NOT_FOUND | STORE_INVALID_INPUT (notifyState not JSON-serialisable)
   */
  updateRepositoryState(key: string, patch: RepositoryStatePatch): void {
    let notifyState: string | null = null;
    if (patch.notifyState !== undefined && patch.notifyState !== null) {
      try {
        notifyState = JSON.stringify(patch.notifyState) ?? null;
      } catch (err) {
        throw new StoreError('STORE_INVALID_INPUT', `notifyState of ${key} is not JSON-serialisable`, { cause: err });
      }
    }
    const info = this.#s.updateRepoState.run({
      key,
      now: this.#now(),
      ...setter('lastCommit', patch.lastCommit),
      ...setter('lastDeployedAt', patch.lastDeployedAt),
      ...setter('pinnedCommit', patch.pinnedCommit),
      ...setter(
        'suspended',
        patch.suspended === undefined ? undefined : patch.suspended === null ? null : flag(patch.suspended),
      ),
      ...setter('lastCheckedAt', patch.lastCheckedAt),
      ...setter('lastSeenCommit', patch.lastSeenCommit),
      ...setter('configHash', patch.configHash),
      ...setter('notifyState', patch.notifyState === undefined ? undefined : notifyState),
    });
    if (info.changes === 0) throw notFound(`repository ${key}`);
  }

  // ── deployments ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Records a new deployment (started now).
   * @throws StoreError STORE_NOT_FOUND (unknown repository) | STORE_INVALID_INPUT (trigger, status)
   */
  createDeployment(input: CreateDeploymentInput): Deployment {
    if (!TRIGGERS.has(input.trigger)) throw invalid(`unknown deployment trigger '${String(input.trigger)}'`);
    if (!OPEN_STATUSES.has(input.status))
      throw invalid(`a deployment starts 'pending' or 'running', not '${String(input.status)}'`);
    const repo = this.#s.repoIdByKey.get(input.repoKey);
    if (!repo) throw notFound(`repository ${input.repoKey}`);
    const id = Number(
      this.#s.insertDeployment.run({
        repositoryId: repo.id,
        commit: input.commit ?? null,
        status: input.status,
        trigger: input.trigger,
        previousCommit: input.previousCommit ?? null,
        configHash: input.configHash ?? null,
        selfUpdate: flag(input.selfUpdate),
        triggeredBy: input.triggeredBy ?? null,
        reason: jsonOrNull(input.reason),
        now: this.#now(),
      }).lastInsertRowid,
    );
    return this.#deployment(id);
  }

  /**
   * Changes an open deployment. Terminal statuses go through `finishDeployment`.
   * @throws StoreError STORE_NOT_FOUND | STORE_CONFLICT (already finished) | STORE_INVALID_INPUT (status)
   */
  updateDeployment(id: number, patch: DeploymentPatch): void {
    if (patch.status !== undefined && !OPEN_STATUSES.has(patch.status)) {
      throw invalid(`updateDeployment sets 'pending' or 'running'; use finishDeployment for '${String(patch.status)}'`);
    }
    this.#tx.update(id, patch);
  }

  /**
   * Appends captured output to a deployment's log (allowed after it finished: the result line and
   * notification outcomes come last). Capped: see log-cap.ts (the head is kept, the rest counted).
   * @throws StoreError STORE_NOT_FOUND
   */
  appendDeploymentLog(id: number, text: string): void {
    if (text === '') {
      if (!this.#s.deploymentHead.get(id)) throw notFound(`deployment ${id}`);
      return;
    }
    this.#tx.append(id, maskSecrets(text));
  }

  /** Records the per-URL notification results (masked) of a deployment, finished or not. */
  setDeploymentNotifications(id: number, results: readonly unknown[]): void {
    const info = this.#s.setNotifications.run({ id, notifications: maskSecrets(JSON.stringify(results)) });
    if (info.changes === 0) throw notFound(`deployment ${id}`);
  }

  /**
   * Records the delivery of one commit status on its deployment (finished or not): replaces the entry for the same
   * commit, context and state, else appends (at most {@link COMMIT_STATUSES_MAX} entries, the oldest dropped). The
   * error text is masked. Written by the commit-status queue only.
   * @throws StoreError STORE_NOT_FOUND
   */
  recordCommitStatus(id: number, record: CommitStatusRecord): void {
    this.#db.transaction(() => {
      const row = this.#s.commitStatuses.get(id);
      if (!row) throw notFound(`deployment ${id}`);
      const stored = parseJson(row.commit_statuses);
      const list = Array.isArray(stored) ? (stored as CommitStatusRecord[]) : [];
      const entry = { ...record, lastError: record.lastError === null ? null : maskSecrets(record.lastError) };
      const i = list.findIndex(
        (r) => r.commit === record.commit && r.context === record.context && r.state === record.state,
      );
      if (i === -1) list.push(entry);
      else list[i] = entry;
      const statuses = maskSecrets(JSON.stringify(list.slice(-COMMIT_STATUSES_MAX)));
      this.#s.setCommitStatuses.run({ id, statuses });
    })();
  }

  /**
   * Finishes a deployment: status, finished_at = now, duration_ms = finished − started. For a `success` (and a
   * `skipped`: the plan found nothing to change), the
   * repository's last_commit, last_deployed_at and config_hash move to this deployment in the same
   * transaction (a success without any known commit keeps the previous last_commit).
   * @returns the finished deployment.
   * @throws StoreError STORE_NOT_FOUND | STORE_CONFLICT (already finished) | STORE_INVALID_INPUT (status)
   */
  finishDeployment(id: number, result: FinishDeploymentInput): Deployment {
    if (!FINAL_STATUSES.has(result.status))
      throw invalid(`'${String(result.status)}' is not a final deployment status`);
    this.#tx.finish(id, result);
    return this.#deployment(id);
  }

  /** One deployment (without logs). */
  getDeployment(id: number): Deployment | undefined {
    const row = this.#s.deploymentById.get(id);
    return row && toDeployment(row);
  }

  /** The captured log text, followed by a `…[truncated N bytes]` marker when the cap dropped some. */
  getDeploymentLogs(id: number): string | undefined {
    const row = this.#s.deploymentLogs.get(id);
    if (!row) return undefined;
    return row.logs_truncated > 0 ? row.logs + truncationMarker(row.logs_truncated) : row.logs;
  }

  /**
   * History of one repository, newest first, paged by id: pass `nextBefore` as `before` for the next page.
   * @param repo repository key (string) or id (number)
   * @throws StoreError STORE_NOT_FOUND (unknown repository) | STORE_INVALID_INPUT (limit not an integer in 1..100)
   */
  listDeployments(repo: string | number, opts: ListDeploymentsOptions = {}): DeploymentPage {
    const limit = opts.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw invalid(`limit must be an integer from 1 to ${MAX_PAGE}`);
    if (opts.before !== undefined && !Number.isInteger(opts.before)) throw invalid('before must be a deployment id');
    const repositoryId = typeof repo === 'number' ? this.#s.repoById.get(repo)?.id : this.#s.repoIdByKey.get(repo)?.id;
    if (repositoryId === undefined) throw notFound(`repository ${repo}`);
    // One row more than asked tells whether another page exists.
    const rows = this.#s.pageDeployments.all({
      repositoryId,
      before: opts.before ?? Number.MAX_SAFE_INTEGER,
      limit: limit + 1,
    });
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(toDeployment);
    return { items, nextBefore: more ? (items.at(-1)?.id ?? null) : null };
  }

  /** The newest deployment of a repository, whatever its status. */
  latestDeployment(repoKey: string): Deployment | undefined {
    const row = this.#s.latest.get(repoKey);
    return row && toDeployment(row);
  }

  /**
   * The newest deployment of each repository of a project, narrowed to what a status view shows: one statement,
   * one indexed lookup per repository, none of the JSON columns or the log length that {@link listDeployments}
   * reads. Keyed by repository id; a repository never deployed has no entry; an unknown project gives an empty map.
   */
  latestDeployments(project: string): Map<number, LatestDeployment> {
    const out = new Map<number, LatestDeployment>();
    for (const r of this.#s.latestOfProject.all(project))
      out.set(r.repository_id, {
        id: r.id,
        repositoryId: r.repository_id,
        status: r.status,
        commit: r.commit_hash,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
      });
    return out;
  }

  /**
   * Boot recovery: every deployment left `pending`/`running` by a previous process becomes `interrupted`
   * (finished now, with INTERRUPTED_ERROR). Self-update deployments are skipped by default: they are
   * finalised by the caller (see `openSelfUpdates`); pass `exceptSelfUpdate: false` to include them.
   * @returns the deployments it interrupted.
   */
  markInterrupted(opts: { exceptSelfUpdate?: boolean } = {}): Deployment[] {
    const exceptSelfUpdate = opts.exceptSelfUpdate ?? true;
    const ids = this.#tx.interrupt(exceptSelfUpdate);
    return ids.map((id) => this.#deployment(id));
  }

  /**
   * Records a finished service action (restart/stop/start/remove/unpin); the error is masked.
   * @throws StoreError STORE_NOT_FOUND (unknown repository)
   */
  recordAction(input: CreateActionInput): ActionRecord {
    const repo = this.#s.repoIdByKey.get(input.repoKey);
    if (!repo) throw notFound(`repository ${input.repoKey}`);
    const id = Number(
      this.#s.insertAction.run({
        repositoryId: repo.id,
        action: input.action,
        service: input.service,
        status: input.status,
        error: input.error === null ? null : maskSecrets(input.error),
        triggeredBy: input.triggeredBy,
        startedAt: input.startedAt,
        finishedAt: input.finishedAt,
      }).lastInsertRowid,
    );
    return toAction(this.#s.actionById.get(id) as RawAction);
  }

  /**
   * A page of a repository's service actions, newest first (like {@link listDeployments}).
   * @throws StoreError STORE_NOT_FOUND (unknown repository) | STORE_INVALID_INPUT (limit)
   */
  listActions(
    repo: string | number,
    opts: ListDeploymentsOptions = {},
  ): { items: ActionRecord[]; nextBefore: number | null } {
    const limit = opts.limit ?? DEFAULT_PAGE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw invalid(`limit must be an integer from 1 to ${MAX_PAGE}`);
    const repositoryId = typeof repo === 'number' ? this.#s.repoById.get(repo)?.id : this.#s.repoIdByKey.get(repo)?.id;
    if (repositoryId === undefined) throw notFound(`repository ${repo}`);
    const rows = this.#s.pageActions.all({
      repositoryId,
      before: opts.before ?? Number.MAX_SAFE_INTEGER,
      limit: limit + 1,
    });
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(toAction);
    return { items, nextBefore: more ? (items.at(-1)?.id ?? null) : null };
  }

  /** Open (`pending`/`running`) self-update deployments, oldest first, for the caller to finalise. */
  openSelfUpdates(): Deployment[] {
    return this.#s.openSelfUpdates.all().map(toDeployment);
  }

  // ── plaintext bookkeeping & retention ──────────────────────────────────────────────────────────────

  /**
   * Records plaintext files deployment `id` wrote (merged by path with those already recorded, newest wins) and
   * marks them pending removal. Called before compose runs, so a crash leaves the exact paths to clean up.
   * @throws StoreError STORE_NOT_FOUND
   */
  recordPlaintext(id: number, files: readonly PlaintextFile[]): void {
    this.#db.transaction(() => {
      const row = this.#s.plaintextOf.get(id);
      if (!row) throw notFound(`deployment ${id}`);
      const byPath = new Map(parsePlaintext(row.plaintext_files).map((f) => [f.path, f]));
      for (const f of files) byPath.set(f.path, plaintextFile(f));
      this.#s.setPlaintext.run({ id, files: JSON.stringify([...byPath.values()]) });
    })();
  }

  /** Marks deployment `id`'s plaintext files as handled (removed, or kept on purpose with keep_decrypted). */
  markPlaintextHandled(id: number): void {
    this.#s.plaintextHandled.run(id);
  }

  /**
   * Plaintext files recorded by the newest deployments of a repository (a few rows, newest first): the files an
   * output path may hold when Shiparr wrote it (kept with keep_decrypted, or written earlier in the same run).
   */
  ownedPlaintext(repoKey: string): PlaintextFile[] {
    return this.#s.ownedPlaintext.all({ key: repoKey, limit: OWNED_LOOKBACK }).flatMap((r) => parsePlaintext(r.files));
  }

  /** Finished deployments whose plaintext may still be on disk (a process died before removing it), oldest first. */
  pendingPlaintext(): PendingPlaintext[] {
    return this.#s.pendingPlaintext
      .all()
      .map((r) => ({ deploymentId: r.id, repoKey: r.repo_key, files: parsePlaintext(r.files) }));
  }

  /**
   * History retention: keeps the `keep` newest deployments of every repository (0 keeps all) and deletes older
   * finished ones with their logs. Never deleted: an unfinished row, the newest successful row of a repository
   * (the commit a rollback returns to), a row whose plaintext is still pending removal. Works in transactions of
   * at most 100 rows and yields to the event loop between them, so a large backlog never blocks it for long.
   */
  async pruneHistory(keep: number): Promise<PruneResult> {
    const result: PruneResult = { deleted: 0, batches: 0 };
    if (!Number.isInteger(keep) || keep < 0) throw invalid('keep must be a whole number (0 keeps everything)');
    if (keep === 0) return result;
    for (const { id: repositoryId } of this.#s.allRepoIds.all()) {
      if (!this.#db.open) return result;
      // Read once per repository: rows added meanwhile are newer than both, so the bounds stay conservative.
      const cutoff = this.#s.keepCutoff.get({ repositoryId, offset: keep - 1 });
      if (!cutoff) continue;
      const lastSuccess = this.#s.lastSuccessId.get(repositoryId)?.id ?? null;
      for (;;) {
        if (!this.#db.open) return result;
        const info = this.#s.pruneBatch.run({ repositoryId, cutoff: cutoff.id, lastSuccess, batch: PRUNE_BATCH });
        if (info.changes === 0) break;
        result.deleted += info.changes;
        result.batches += 1;
        await new Promise((r) => setImmediate(r));
      }
    }
    return result;
  }

  // ── image watch ────────────────────────────────────────────────────────────────────────────────────

  /** The image watch's entries of a repository, by service name; empty for an unknown repository. */
  listImageWatch(repoKey: string): ImageWatchEntry[] {
    const repo = this.#s.repoIdByKey.get(repoKey);
    if (!repo) return [];
    return this.#imageStatements().list.all(repo.id).map(toImageWatchEntry);
  }

  /**
   * Replaces a repository's image watch entries in one transaction: the services given are written (reasons masked),
   * services not given are removed (they left the project).
   * @throws StoreError STORE_NOT_FOUND (unknown repository)
   */
  saveImageWatch(repoKey: string, entries: readonly ImageWatchEntry[]): void {
    const repo = this.#s.repoIdByKey.get(repoKey);
    if (!repo) throw notFound(`repository ${repoKey}`);
    const s = this.#imageStatements();
    this.#db.transaction(() => {
      s.clear.run(repo.id);
      for (const e of entries)
        s.insert.run({
          repositoryId: repo.id,
          service: e.service,
          image: e.image,
          localDigest: e.localDigest,
          remoteDigest: e.remoteDigest,
          status: e.status,
          reason: e.reason === null ? null : maskSecrets(e.reason),
          errorCode: e.errorCode,
          checkedAt: e.checkedAt,
          notifiedDigest: e.notifiedDigest,
          notifiedError: e.notifiedError === null ? null : maskSecrets(e.notifiedError),
          deployedDigest: e.deployedDigest,
          newerTag: e.newerTag,
          notifiedTag: e.notifiedTag,
        });
    })();
  }

  #imageStmts: ReturnType<typeof prepareImageStatements> | undefined;
  #imageStatements(): ReturnType<typeof prepareImageStatements> {
    return (this.#imageStmts ??= prepareImageStatements(this.#db));
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────

  #now(): string {
    return this.#clock().toISOString();
  }

  #deployment(id: number): Deployment {
    const row = this.#s.deploymentById.get(id);
    if (!row) throw notFound(`deployment ${id}`);
    return toDeployment(row);
  }

  /** The open deployment `id`, or a typed error. */
  #openHead(id: number): DeploymentHead {
    const head = this.#s.deploymentHead.get(id);
    if (!head) throw notFound(`deployment ${id}`);
    if (head.finished_at !== null)
      throw new StoreError('STORE_CONFLICT', `deployment ${id} already finished (${head.status})`);
    return head;
  }

  /** Multi-statement writes; each runs in one transaction (ROLLBACK when it throws). */
  readonly #tx = {
    update: (id: number, patch: DeploymentPatch): void =>
      this.#db.transaction(() => {
        this.#openHead(id);
        this.#s.updateDeployment.run({
          id,
          ...setter('status', patch.status),
          ...setter('stage', patch.stage),
          ...setter('commit', patch.commit),
          ...setter('error', patch.error == null ? patch.error : maskSecrets(patch.error)),
          ...setter('previousCommit', patch.previousCommit),
          ...setter('configHash', patch.configHash),
          ...setter('selfUpdate', patch.selfUpdate === undefined ? undefined : flag(patch.selfUpdate)),
          ...setter('reason', patch.reason === undefined ? undefined : jsonOrNull(patch.reason)),
          ...setter('plan', patch.plan === undefined ? undefined : jsonOrNull(patch.plan)),
          ...setter('serviceImages', patch.serviceImages === undefined ? undefined : jsonOrNull(patch.serviceImages)),
          ...setter(
            'commitSubject',
            patch.commitSubject == null ? patch.commitSubject : capSubject(patch.commitSubject),
          ),
        });
      })(),

    append: (id: number, text: string): void =>
      this.#db.transaction(() => {
        const size = this.#s.logSize.get(id);
        if (!size) throw notFound(`deployment ${id}`);
        const { kept, dropped } = fitUtf8(text, LOG_STORED_MAX_BYTES - size.bytes);
        this.#s.appendLog.run({ id, text: kept, dropped });
      })(),

    finish: (id: number, r: FinishDeploymentInput): void =>
      this.#db
        .transaction(() => {
          const head = this.#openHead(id);
          const finishedAt = this.#now();
          const commit = r.commit ?? head.commit_hash;
          this.#s.finishDeployment.run({
            id,
            status: r.status,
            finishedAt,
            durationMs: durationMs(head.started_at, finishedAt),
            commit,
            ...setter('stage', r.stage),
            ...setter('error', r.error == null ? r.error : maskSecrets(r.error)),
            ...setter('rolledBackTo', r.rolledBackTo),
            ...setter(
              'notifications',
              r.notifications == null ? r.notifications : maskSecrets(JSON.stringify(r.notifications)),
            ),
          });
          // A skipped deployment (the plan found nothing to change) counts as deployed: the stack is that commit's.
          if (r.status === 'success' || r.status === 'skipped') {
            this.#s.recordSuccess.run({
              repositoryId: head.repository_id,
              commit,
              deployedAt: finishedAt,
              configHash: head.config_hash,
            });
          }
        })
        .immediate(),

    interrupt: (exceptSelfUpdate: boolean): number[] =>
      this.#db
        .transaction(() => {
          const now = this.#now();
          const open = this.#s.openDeployments.all({ all: flag(!exceptSelfUpdate) });
          for (const d of open) {
            this.#s.interruptDeployment.run({
              id: d.id,
              now,
              durationMs: durationMs(d.started_at, now),
              error: INTERRUPTED_ERROR,
            });
          }
          return open.map((d) => d.id);
        })
        .immediate(),
  };
}

/** Every statement the store runs, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare<[], { one: number }>('SELECT 1 AS one FROM projects LIMIT 1'),
    allProjects: db.prepare<[], RawProject>('SELECT * FROM projects'),
    syncRepos: db.prepare<[], SyncRepository>(
      `SELECT r.id, r.project_id, r.name, r.key, r.url, r.branch, r.path, r.local_path, r.check_interval, r.active,
         p.name AS project
       FROM repositories r JOIN projects p ON p.id = r.project_id`,
    ),
    repoIds: db.prepare<[], { key: string; id: number }>('SELECT key, id FROM repositories'),
    insertProject: db.prepare<Params>(
      `INSERT INTO projects (name, description, file, active, created_at, updated_at)
       VALUES (@name, @description, @file, 1, @now, @now)`,
    ),
    updateProject: db.prepare<Params>(
      'UPDATE projects SET description = @description, file = @file, active = 1, updated_at = @now WHERE id = @id',
    ),
    deactivateProject: db.prepare<Params>('UPDATE projects SET active = 0, updated_at = @now WHERE id = @id'),
    insertRepo: db.prepare<Params>(
      `INSERT INTO repositories (project_id, name, key, url, branch, path, local_path, check_interval, active, created_at, updated_at)
       VALUES (@projectId, @name, @key, @url, @branch, @path, @localPath, @checkInterval, 1, @now, @now)`,
    ),
    updateRepo: db.prepare<Params>(
      `UPDATE repositories SET project_id = @projectId, name = @name, url = @url, branch = @branch, path = @path,
         local_path = @localPath, check_interval = @checkInterval, active = 1, updated_at = @now
       WHERE key = @key`,
    ),
    deactivateRepo: db.prepare<Params>('UPDATE repositories SET active = 0, updated_at = @now WHERE id = @id'),
    listProjects: db.prepare<Params, RawProject>('SELECT * FROM projects WHERE (@all OR active = 1) ORDER BY name'),
    repoByKey: db.prepare<[string], RawRepository>(`${REPO_SELECT} WHERE r.key = ?`),
    repoById: db.prepare<[number], RawRepository>(`${REPO_SELECT} WHERE r.id = ?`),
    repoIdByKey: db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE key = ?'),
    listRepos: db.prepare<Params, RawRepository>(
      `${REPO_SELECT} WHERE (@project IS NULL OR p.name = @project) AND (@all OR r.active = 1) ORDER BY r.key`,
    ),
    // One statement for every patch shape: each column has a set flag, so nothing is prepared per call.
    updateRepoState: db.prepare<Params>(
      `UPDATE repositories SET
         last_commit      = CASE WHEN @setLastCommit     THEN @lastCommit     ELSE last_commit END,
         last_deployed_at = CASE WHEN @setLastDeployedAt THEN @lastDeployedAt ELSE last_deployed_at END,
         pinned_commit    = CASE WHEN @setPinnedCommit   THEN @pinnedCommit   ELSE pinned_commit END,
         suspended        = CASE WHEN @setSuspended      THEN @suspended      ELSE suspended END,
         last_checked_at  = CASE WHEN @setLastCheckedAt  THEN @lastCheckedAt  ELSE last_checked_at END,
         last_seen_commit = CASE WHEN @setLastSeenCommit THEN @lastSeenCommit ELSE last_seen_commit END,
         config_hash      = CASE WHEN @setConfigHash     THEN @configHash     ELSE config_hash END,
         notify_state     = CASE WHEN @setNotifyState    THEN @notifyState    ELSE notify_state END,
         updated_at = @now
       WHERE key = @key`,
    ),
    insertDeployment: db.prepare<Params>(
      `INSERT INTO deployments (repository_id, commit_hash, status, "trigger", previous_commit, config_hash, self_update, triggered_by, reason, started_at)
       VALUES (@repositoryId, @commit, @status, @trigger, @previousCommit, @configHash, @selfUpdate, @triggeredBy, @reason, @now)`,
    ),
    deploymentHead: db.prepare<[number], DeploymentHead>(
      'SELECT repository_id, status, started_at, finished_at, commit_hash, config_hash FROM deployments WHERE id = ?',
    ),
    updateDeployment: db.prepare<Params>(
      `UPDATE deployments SET
         status          = CASE WHEN @setStatus         THEN @status         ELSE status END,
         stage           = CASE WHEN @setStage          THEN @stage          ELSE stage END,
         commit_hash     = CASE WHEN @setCommit         THEN @commit         ELSE commit_hash END,
         error           = CASE WHEN @setError          THEN @error          ELSE error END,
         previous_commit = CASE WHEN @setPreviousCommit THEN @previousCommit ELSE previous_commit END,
         config_hash     = CASE WHEN @setConfigHash     THEN @configHash     ELSE config_hash END,
         self_update     = CASE WHEN @setSelfUpdate     THEN @selfUpdate     ELSE self_update END,
         reason          = CASE WHEN @setReason         THEN @reason         ELSE reason END,
         plan            = CASE WHEN @setPlan           THEN @plan           ELSE plan END,
         service_images  = CASE WHEN @setServiceImages  THEN @serviceImages  ELSE service_images END,
         commit_subject  = CASE WHEN @setCommitSubject  THEN @commitSubject  ELSE commit_subject END
       WHERE id = @id`,
    ),
    // octet_length reads the size from the record header: the log text itself is not loaded.
    logSize: db.prepare<[number], { bytes: number }>(
      'SELECT octet_length(logs) AS bytes FROM deployments WHERE id = ?',
    ),
    appendLog: db.prepare<Params>(
      'UPDATE deployments SET logs = logs || @text, logs_truncated = logs_truncated + @dropped WHERE id = @id',
    ),
    deploymentLogs: db.prepare<[number], { logs: string; logs_truncated: number }>(
      'SELECT logs, logs_truncated FROM deployments WHERE id = ?',
    ),
    setNotifications: db.prepare<Params>('UPDATE deployments SET notifications = @notifications WHERE id = @id'),
    commitStatuses: db.prepare<[number], { commit_statuses: string | null }>(
      'SELECT commit_statuses FROM deployments WHERE id = ?',
    ),
    setCommitStatuses: db.prepare<Params>('UPDATE deployments SET commit_statuses = @statuses WHERE id = @id'),
    finishDeployment: db.prepare<Params>(
      `UPDATE deployments SET
         status = @status, finished_at = @finishedAt, duration_ms = @durationMs, commit_hash = @commit,
         stage          = CASE WHEN @setStage         THEN @stage         ELSE stage END,
         error          = CASE WHEN @setError         THEN @error         ELSE error END,
         rolled_back_to = CASE WHEN @setRolledBackTo  THEN @rolledBackTo  ELSE rolled_back_to END,
         notifications  = CASE WHEN @setNotifications THEN @notifications ELSE notifications END
       WHERE id = @id`,
    ),
    recordSuccess: db.prepare<Params>(
      `UPDATE repositories SET last_commit = COALESCE(@commit, last_commit), last_deployed_at = @deployedAt,
         config_hash = COALESCE(@configHash, config_hash), updated_at = @deployedAt
       WHERE id = @repositoryId`,
    ),
    deploymentById: db.prepare<[number], RawDeployment>(`${DEPLOYMENT_SELECT} WHERE d.id = ?`),
    pageDeployments: db.prepare<Params, RawDeployment>(
      `${DEPLOYMENT_SELECT} WHERE d.repository_id = @repositoryId AND d.id < @before ORDER BY d.id DESC LIMIT @limit`,
    ),
    latest: db.prepare<[string], RawDeployment>(`${DEPLOYMENT_SELECT} WHERE r.key = ? ORDER BY d.id DESC LIMIT 1`),
    // The inner ORDER BY … LIMIT 1 walks deployments_repository_id backwards: one index step per repository.
    latestOfProject: db.prepare<[string], RawLatestDeployment>(
      `SELECT d.id, d.repository_id, d.status, d.commit_hash, d.started_at, d.finished_at
       FROM projects p JOIN repositories r ON r.project_id = p.id
       JOIN deployments d ON d.id = (SELECT id FROM deployments WHERE repository_id = r.id ORDER BY id DESC LIMIT 1)
       WHERE p.name = ?`,
    ),
    openDeployments: db.prepare<Params, { id: number; started_at: string }>(
      `SELECT id, started_at FROM deployments
       WHERE status IN ('pending', 'running') AND (@all OR self_update = 0) ORDER BY id`,
    ),
    interruptDeployment: db.prepare<Params>(
      `UPDATE deployments SET status = 'interrupted', finished_at = @now, duration_ms = @durationMs, error = @error
       WHERE id = @id`,
    ),
    plaintextOf: db.prepare<[number], { plaintext_files: string | null }>(
      'SELECT plaintext_files FROM deployments WHERE id = ?',
    ),
    setPlaintext: db.prepare<Params>(
      'UPDATE deployments SET plaintext_files = @files, plaintext_pending = 1 WHERE id = @id',
    ),
    plaintextHandled: db.prepare<[number]>('UPDATE deployments SET plaintext_pending = 0 WHERE id = ?'),
    ownedPlaintext: db.prepare<Params, { files: string }>(
      `SELECT d.plaintext_files AS files FROM deployments d JOIN repositories r ON r.id = d.repository_id
       WHERE r.key = @key AND d.plaintext_files IS NOT NULL ORDER BY d.id DESC LIMIT @limit`,
    ),
    pendingPlaintext: db.prepare<[], { id: number; repo_key: string; files: string }>(
      `SELECT d.id, r.key AS repo_key, d.plaintext_files AS files FROM deployments d
       JOIN repositories r ON r.id = d.repository_id
       WHERE d.plaintext_pending = 1 AND d.finished_at IS NOT NULL ORDER BY d.id`,
    ),
    allRepoIds: db.prepare<[], { id: number }>('SELECT id FROM repositories ORDER BY id'),
    // The id of the keep-th newest row: everything older is outside the retention window.
    keepCutoff: db.prepare<Params, { id: number }>(
      'SELECT id FROM deployments WHERE repository_id = @repositoryId ORDER BY id DESC LIMIT 1 OFFSET @offset',
    ),
    lastSuccessId: db.prepare<[number], { id: number }>(
      `SELECT id FROM deployments WHERE repository_id = ? AND status = 'success' ORDER BY id DESC LIMIT 1`,
    ),
    pruneBatch: db.prepare<Params>(
      `DELETE FROM deployments WHERE id IN (
         SELECT id FROM deployments
         WHERE repository_id = @repositoryId AND id < @cutoff AND finished_at IS NOT NULL AND plaintext_pending = 0
           AND id IS NOT @lastSuccess
         ORDER BY id LIMIT @batch)`,
    ),
    insertAction: db.prepare<Params>(
      `INSERT INTO actions (repository_id, action, service, status, error, triggered_by, started_at, finished_at)
       VALUES (@repositoryId, @action, @service, @status, @error, @triggeredBy, @startedAt, @finishedAt)`,
    ),
    actionById: db.prepare<[number], RawAction>(`${ACTION_SELECT} WHERE id = ?`),
    pageActions: db.prepare<Params, RawAction>(
      `${ACTION_SELECT} WHERE repository_id = @repositoryId AND id < @before ORDER BY id DESC LIMIT @limit`,
    ),
    openSelfUpdates: db.prepare<[], RawDeployment>(
      `${DEPLOYMENT_SELECT} WHERE d.status IN ('pending', 'running') AND d.self_update = 1 ORDER BY d.id`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

interface RawImageWatch {
  service: string;
  image: string;
  local_digest: string | null;
  remote_digest: string | null;
  status: ImageWatchStatus;
  reason: string | null;
  error_code: string | null;
  checked_at: string | null;
  notified_digest: string | null;
  notified_error: string | null;
  deployed_digest: string | null;
  newer_tag: string | null;
  notified_tag: string | null;
}

/** The image watch table's statements (migration 6), prepared on first use. */
function prepareImageStatements(db: Database.Database) {
  return {
    list: db.prepare<[number], RawImageWatch>('SELECT * FROM image_watch WHERE repository_id = ? ORDER BY service'),
    clear: db.prepare<[number]>('DELETE FROM image_watch WHERE repository_id = ?'),
    insert: db.prepare<Params>(
      `INSERT INTO image_watch (repository_id, service, image, local_digest, remote_digest, status, reason, error_code,
         checked_at, notified_digest, notified_error, deployed_digest, newer_tag, notified_tag)
       VALUES (@repositoryId, @service, @image, @localDigest, @remoteDigest, @status, @reason, @errorCode, @checkedAt,
         @notifiedDigest, @notifiedError, @deployedDigest, @newerTag, @notifiedTag)`,
    ),
  };
}

function toImageWatchEntry(r: RawImageWatch): ImageWatchEntry {
  return {
    service: r.service,
    image: r.image,
    localDigest: r.local_digest,
    remoteDigest: r.remote_digest,
    status: r.status,
    reason: r.reason,
    errorCode: r.error_code,
    checkedAt: r.checked_at,
    notifiedDigest: r.notified_digest,
    notifiedError: r.notified_error,
    deployedDigest: r.deployed_digest,
    newerTag: r.newer_tag,
    notifiedTag: r.notified_tag,
  };
}

// ── helpers ────────────────────────────────────────────────────────────────────────────────────────────

function flag(v: boolean | undefined): Flag {
  return v ? 1 : 0;
}

/**
 * Parameters for one `CASE WHEN @setX THEN @x ELSE x END` column: `undefined` leaves the column alone
 * (better-sqlite3 needs every named parameter bound, and binds no booleans).
 */
function setter<K extends string>(name: K, value: unknown): Record<string, unknown> {
  const cap = name.charAt(0).toUpperCase() + name.slice(1);
  return { [`set${cap}`]: value === undefined ? 0 : 1, [name]: value ?? null };
}

function durationMs(startedAt: string, finishedAt: string): number {
  const ms = Date.parse(finishedAt) - Date.parse(startedAt);
  // A clock stepped backwards (NTP) must not record a negative duration.
  return Number.isFinite(ms) ? Math.max(0, ms) : 0;
}

function notFound(what: string): StoreError {
  return new StoreError('STORE_NOT_FOUND', `${what} not found`);
}

function invalid(message: string): StoreError {
  return new StoreError('STORE_INVALID_INPUT', message);
}

function validateSync(projects: readonly SyncProjectInput[]): void {
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const p of projects) {
    if (!p.name) throw invalid('a project needs a name');
    if (names.has(p.name)) throw invalid(`project ${p.name} is listed twice`);
    names.add(p.name);
    for (const r of p.repositories) {
      if (r.key !== `${p.name}/${r.name}`) throw invalid(`repository key ${r.key} must be ${p.name}/${r.name}`);
      if (keys.has(r.key)) throw invalid(`repository ${r.key} is listed twice`);
      if (!Number.isFinite(r.checkInterval) || r.checkInterval <= 0)
        throw invalid(`repository ${r.key}: check interval must be a positive number`);
      keys.add(r.key);
    }
  }
}

/** Only the five known fields, as strings: the column never carries anything else (no contents, no hashes). */
function plaintextFile(f: PlaintextFile): PlaintextFile {
  return { path: f.path, dev: String(f.dev), ino: String(f.ino), size: String(f.size), mtimeNs: String(f.mtimeNs) };
}

function parsePlaintext(text: string | null): PlaintextFile[] {
  const v = parseJson(text);
  if (!Array.isArray(v)) return [];
  return v
    .filter(
      (f): f is PlaintextFile => typeof f === 'object' && f !== null && typeof (f as PlaintextFile).path === 'string',
    )
    .map(plaintextFile);
}

/**
 * JSON for a structured column (reason, plan, images), masked like every free-text column: a reason carries commit
 * subjects and names, never a secret on purpose, but a subject could quote one.
 */
function jsonOrNull(v: DeploymentReason | ServicePlan[] | ServiceImage[] | null | undefined): string | null {
  return v === null || v === undefined ? null : maskSecrets(JSON.stringify(v));
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Written by this store as JSON; a hand-edited broken value reads as absent rather than failing the API.
    return null;
  }
}

function toProject(r: RawProject): ProjectRow {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    file: r.file,
    active: r.active === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toRepository(r: RawRepository): RepositoryRow {
  return {
    id: r.id,
    projectId: r.project_id,
    project: r.project,
    name: r.name,
    key: r.key,
    url: r.url,
    branch: r.branch,
    path: r.path,
    localPath: r.local_path,
    checkInterval: r.check_interval,
    active: r.active === 1,
    lastCommit: r.last_commit,
    lastDeployedAt: r.last_deployed_at,
    pinnedCommit: r.pinned_commit,
    suspended: r.suspended === null ? null : r.suspended === 1,
    lastCheckedAt: r.last_checked_at,
    lastSeenCommit: r.last_seen_commit,
    configHash: r.config_hash,
    notifyState: parseJson(r.notify_state),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastCommitSubject: r.last_commit_subject ?? null,
  };
}

function toDeployment(r: RawDeployment): Deployment {
  const notifications = parseJson(r.notifications);
  return {
    id: r.id,
    repositoryId: r.repository_id,
    repoKey: r.repo_key,
    commit: r.commit_hash,
    status: r.status,
    trigger: r.trigger,
    stage: r.stage,
    error: r.error,
    previousCommit: r.previous_commit,
    rolledBackTo: r.rolled_back_to,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    configHash: r.config_hash,
    notifications: Array.isArray(notifications) ? (notifications as unknown[]) : null,
    selfUpdate: r.self_update === 1,
    logBytes: r.log_bytes,
    logTruncatedBytes: r.logs_truncated,
    triggeredBy: r.triggered_by,
    reason: parseJson(r.reason) as Deployment['reason'],
    plan: parseJson(r.plan) as Deployment['plan'],
    serviceImages: parseJson(r.service_images) as Deployment['serviceImages'],
    commitSubject: r.commit_subject ?? null,
    commitStatuses: parseJson(r.commit_statuses) as Deployment['commitStatuses'],
  };
}

/** A commit subject as stored and shown: one line, at most SUBJECT_MAX characters. */
function capSubject(subject: string): string {
  const line = subject.split(/\r?\n/, 1)[0] ?? '';
  return line.length > SUBJECT_MAX ? `${line.slice(0, SUBJECT_MAX - 1)}…` : line;
}

function toAction(r: RawAction): ActionRecord {
  return {
    id: r.id,
    repositoryId: r.repository_id,
    action: r.action,
    service: r.service,
    status: r.status,
    error: r.error,
    triggeredBy: r.triggered_by,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}
