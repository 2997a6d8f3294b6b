/**
 * @module The supervisor: one deploy actor per repository, built from config at boot (domain state restored
 * from SQLite), hot config changes applied as a per-repository diff, crashed actors restarted with bounded
 * backoff, a global deploy limit, and the read view + commands the HTTP layer uses (SupervisorPort).
 */
import { createActor, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import type { Logger } from 'pino';
import type { ProjectConfig, RepoConfig } from '../config/schema.ts';
import type {
  ActivityEvent, ConfigIssue, Deployment, NotifyOutcome, ProjectInfo, ReloadResult, RepoStatus, VerifyResult,
} from '../domain/types.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { createRepoLogic, type HistoryWriter } from '../actors/repo-actor.ts';
import { DeploySlots } from '../actors/deploy-slots.ts';
import type { Notice } from '../machines/deploy-machine.ts';
import type { RunTask } from '../workers/types.ts';
import type { RepositoryRow } from '../store/types.ts';

type RepoLogic = ReturnType<typeof createRepoLogic>;
type RepoActor = ActorRefFrom<RepoLogic>;
type RepoSnapshot = SnapshotFrom<RepoLogic>;

/** What the supervisor needs from the store. */
interface SupervisorStore extends HistoryWriter {
  syncConfig(
    projects: { name: string; description?: string; file: string; repositories: { key: string; name: string; url: string; branch: string; path: string; localPath: string; checkInterval: number }[] }[],
    opts?: { keepProjects?: string[] },
  ): unknown;
  getRepository(key: string): RepoRow | undefined;
  getRepositoryById(id: number): RepoRow | undefined;
  listRepositories(q?: { project?: string; includeInactive?: boolean }): RepoRow[];
  listProjects(q?: { includeInactive?: boolean }): { name: string; description: string | null; file: string | null; active: boolean }[];
  getDeployment(id: number): Deployment | undefined;
  latestDeployment(repoKey: string): Deployment | undefined;
  listDeployments(repoKeyOrId: string | number, q: { limit?: number; before?: number }): { items: Deployment[]; nextBefore: number | null };
  markInterrupted(opts?: { exceptSelfUpdate?: boolean }): Deployment[];
}

/** A repository row as the store returns it (type only: the supervisor depends on the store's shape, not its code). */
export type RepoRow = RepositoryRow;

export interface LoadedConfig {
  projects: ProjectConfig[];
  errors: ConfigIssue[];
  files: { file: string; project?: string; ok: boolean }[];
}

export interface SupervisorDeps {
  store: SupervisorStore;
  runTask: RunTask;
  verify(repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult>;
  notify(repo: RepoConfig, notice: Notice): Promise<NotifyOutcome[]>;
  /** Re-reads the project files (for reload). */
  loadConfig(): Promise<LoadedConfig>;
  log: Logger;
  maxConcurrentDeploys: number;
  secrets: { ageKeyFile?: string; ageKey?: string };
  random?: () => number;
  /** Check every repository as soon as its actor starts (default true). */
  checkOnStart?: boolean;
  /** Restart policy for crashed actors. */
  restart?: { max: number; windowMs: number; baseDelayMs: number };
  /** true for Shiparr's own compose project: its deployments are flagged self-update (see self-update.ts). */
  isSelf?: (composeProject: string) => boolean;
}

interface Entry {
  repo: RepoConfig;
  actor: RepoActor | null;
  state: string;
  since: string;
  restarts: number;
  restartTimes: number[];
  failed: string | null;
  restartTimer: NodeJS.Timeout | null;
}

const BUSY = new Set(['checking', 'pulling', 'decrypting', 'applying', 'verifying', 'rollingBack', 'notifying', 'finishing']);
const topState = (s: RepoSnapshot): string => (typeof s.value === 'string' ? s.value : Object.keys(s.value)[0] ?? 'unknown');
const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

/** Implements the HTTP layer's SupervisorPort (checked structurally where the daemon wires it; no import of http/). */
export class Supervisor {
  readonly #deps: SupervisorDeps;
  readonly #log: Logger;
  readonly #slots: DeploySlots;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(e: ActivityEvent) => void>();
  /** Last good config per file path: an invalid edit keeps the previous project. */
  #byFile = new Map<string, ProjectConfig>();
  #errors: ConfigIssue[] = [];
  #stopping = false;
  #reloading: Promise<ReloadResult> | null = null;

  constructor(deps: SupervisorDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ component: 'supervisor' });
    this.#slots = new DeploySlots(deps.maxConcurrentDeploys);
  }

  /** Applies the first config and spawns actors (each checks at once). */
  start(config: LoadedConfig): void {
    this.#apply(config, true);
  }

  get configErrors(): ConfigIssue[] {
    return this.#errors;
  }

  get slots(): DeploySlots {
    return this.#slots;
  }

  // ---- config ------------------------------------------------------------------------------------------

  #apply(config: LoadedConfig, boot: boolean): { added: string[]; removed: string[]; changed: string[] } {
    const nextByFile = new Map<string, ProjectConfig>();
    for (const p of config.projects) nextByFile.set(p.file, p);
    // Files that failed now but loaded before keep their last good project.
    const keepProjects: string[] = [];
    for (const f of config.files) {
      if (!f.ok) {
        const prev = this.#byFile.get(f.file);
        if (prev && ![...nextByFile.values()].some((p) => p.name === prev.name)) {
          nextByFile.set(f.file, prev);
          keepProjects.push(prev.name);
        }
      }
    }
    this.#byFile = nextByFile;
    this.#errors = config.errors;
    const projects = [...nextByFile.values()];
    this.#deps.store.syncConfig(
      projects.map((p) => ({
        name: p.name,
        description: p.description,
        file: p.file,
        repositories: p.repositories.map((r) => ({ key: r.key, name: r.name, url: r.url, branch: r.branch, path: r.path, localPath: r.localPath, checkInterval: r.checkInterval })),
      })),
      { keepProjects },
    );
    const wanted = new Map<string, RepoConfig>();
    for (const p of projects) for (const r of p.repositories) if (r.enabled) wanted.set(r.key, r);
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const key of [...this.#entries.keys()]) {
      if (!wanted.has(key)) {
        this.#stopEntry(key);
        removed.push(key);
      }
    }
    for (const [key, repo] of wanted) {
      const entry = this.#entries.get(key);
      if (!entry) {
        // At boot, spread the first checks (25 ms per repository, at most 30 s) so 1,000 repositories do not
        // hit their remotes and the worker pool in the same instant.
        this.#spawn(repo, boot ? this.#deps.checkOnStart ?? true : true, boot ? Math.min(30_000, wanted.size * 25) : 0);
        added.push(key);
      } else if (JSON.stringify(entry.repo) !== JSON.stringify(repo)) {
        entry.repo = repo;
        changed.push(key);
        if (entry.actor) entry.actor.send({ type: 'config.updated', repo });
        else if (entry.failed) this.#respawn(key);
      }
    }
    if (!boot) this.#log.info({ added, removed, changed, errors: config.errors.length }, 'configuration applied');
    return { added, removed, changed };
  }

  async reload(): Promise<ReloadResult> {
    // Serialise reloads (watcher, SIGHUP and the API may fire together).
    while (this.#reloading) await this.#reloading.catch(() => undefined);
    const run = (async () => {
      const config = await this.#deps.loadConfig();
      for (const e of config.errors) this.#log.error({ file: e.file, path: e.path }, `config error: ${e.message}`);
      const diff = this.#apply(config, false);
      this.#emit({ type: 'config.reloaded', errors: config.errors.length, at: new Date().toISOString() });
      return { errors: config.errors, ...diff };
    })();
    this.#reloading = run;
    try {
      return await run;
    } finally {
      this.#reloading = null;
    }
  }

  // ---- actors ------------------------------------------------------------------------------------------

  #spawn(repo: RepoConfig, checkOnStart: boolean, bootSpreadMs = 0): void {
    const row = this.#deps.store.getRepository(repo.key);
    const entry: Entry = this.#entries.get(repo.key) ?? {
      repo, actor: null, state: 'boot', since: new Date().toISOString(), restarts: 0, restartTimes: [], failed: null, restartTimer: null,
    };
    entry.repo = repo;
    entry.failed = null;
    this.#entries.set(repo.key, entry);
    const log = this.#deps.log.child({ repo: repo.key });
    const logic = createRepoLogic({
      runTask: this.#deps.runTask,
      history: this.#deps.store,
      slots: this.#slots,
      verify: this.#deps.verify,
      notify: this.#deps.notify,
      secrets: this.#deps.secrets,
      log,
      // The actors' activity goes out unchanged: one event type from actor to SSE.
      report: (e) => this.#emit(e),
      isSelf: this.#deps.isSelf,
    });
    const random = this.#deps.random ?? Math.random;
    const actor = createActor(logic, {
      id: repo.key,
      systemId: `repo:${repo.key}`,
      input: {
        repo,
        lastDeployedCommit: row?.lastCommit ?? null,
        // A deployment cut off by a crash may have half-applied compose: forget the config hash so the first check
        // re-applies the target even when the commit did not change.
        lastConfigHash: this.#deps.store.latestDeployment(repo.key)?.status === 'interrupted' ? null : (row?.configHash ?? null),
        pinnedCommit: row?.pinnedCommit ?? null,
        suspended: row?.suspended ?? repo.suspended,
        checkOnStart,
        bootDelayMs: bootSpreadMs > 0 ? Math.round(random() * bootSpreadMs) : 0,
        jitter: random(),
      },
    });
    entry.actor = actor;
    actor.subscribe({
      next: (snap) => this.#onSnapshot(entry, actor, snap),
      error: (err) => this.#onActorError(entry, actor, err),
    });
    actor.start();
  }

  #onSnapshot(entry: Entry, actor: RepoActor, snap: RepoSnapshot): void {
    if (entry.actor !== actor) return;
    const state = topState(snap);
    if (state !== entry.state) {
      const previous = entry.state;
      entry.state = state;
      entry.since = new Date().toISOString();
      const row = this.#deps.store.getRepository(entry.repo.key);
      this.#emit({ type: 'state', repoKey: entry.repo.key, repoId: row?.id ?? 0, state: this.#displayState(entry), previous, at: entry.since });
    }
  }

  #onActorError(entry: Entry, actor: RepoActor, err: unknown): void {
    if (entry.actor !== actor) return;
    const key = entry.repo.key;
    entry.actor = null;
    const policy = this.#deps.restart ?? { max: 5, windowMs: 10 * 60_000, baseDelayMs: 1_000 };
    const now = Date.now();
    entry.restartTimes = entry.restartTimes.filter((t) => now - t < policy.windowMs);
    this.#log.error({ err, repo: key, restarts: entry.restarts }, 'repository actor crashed');
    if (this.#stopping) return;
    if (entry.restartTimes.length >= policy.max) {
      entry.failed = err instanceof Error ? err.message : String(err);
      entry.state = 'failed';
      entry.since = new Date().toISOString();
      this.#log.error({ repo: key }, `actor restarted ${policy.max} times within ${policy.windowMs / 1000}s; giving up until the config changes or it is resumed`);
      this.#emit({ type: 'state', repoKey: key, repoId: this.#deps.store.getRepository(key)?.id ?? 0, state: 'failed', previous: null, at: entry.since });
      return;
    }
    const delay = policy.baseDelayMs * 2 ** entry.restartTimes.length;
    entry.restartTimes.push(now);
    entry.restarts += 1;
    entry.state = 'restarting';
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = null;
      if (!this.#stopping && this.#entries.get(key) === entry) this.#spawn(entry.repo, true);
    }, delay);
    entry.restartTimer.unref?.();
  }

  #respawn(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    entry.restartTimes = [];
    this.#spawn(entry.repo, true);
  }

  #stopEntry(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    if (entry.restartTimer) clearTimeout(entry.restartTimer);
    const openId = entry.actor?.getSnapshot().context.run?.deploymentId ?? null;
    entry.actor?.stop();
    entry.actor = null;
    this.#entries.delete(key);
    // A repository removed from the config mid-deploy: its aborted run must not stay `running` until the next boot.
    // (At shutdown, stop() marks every open row interrupted itself, self-updates excepted.)
    if (openId !== null && !this.#stopping) {
      const d = this.#deps.store.getDeployment(openId);
      if (d && (d.status === 'pending' || d.status === 'running')) {
        this.#deps.store.finishDeployment(openId, { status: 'interrupted', error: 'interrupted: the repository was removed from the configuration' });
        this.#log.warn({ repo: key, deploymentId: openId }, 'repository removed during a deploy; deployment marked interrupted');
      }
    }
  }

  #emit(e: ActivityEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.warn({ err }, 'event listener failed');
      }
    }
  }

  // ---- read view ---------------------------------------------------------------------------------------

  #displayState(entry: Entry): string {
    if (entry.failed) return 'failed';
    const snap = entry.actor?.getSnapshot();
    if (!snap) return entry.state;
    const state = topState(snap);
    if (state === 'idle' && snap.context.attempt > 0) return 'backoff';
    return state === 'boot' || state === 'finishing' ? 'checking' : state;
  }

  #status(row: RepoRow, entry: Entry | undefined): RepoStatus {
    const snap = entry?.actor?.getSnapshot();
    const ctx = snap?.context;
    const repo = entry?.repo;
    const state = entry ? this.#displayState(entry) : row.active ? 'stopped' : 'removed';
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
      since: entry?.since ?? new Date(0).toISOString(),
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
    };
  }

  list(): RepoStatus[] {
    return this.#deps.store.listRepositories({ includeInactive: false }).map((row) => this.#status(row, this.#entries.get(row.key)));
  }

  get(idOrKey: number | string): RepoStatus | undefined {
    const row =
      typeof idOrKey === 'number' ? this.#deps.store.getRepositoryById(idOrKey) : /^\d+$/.test(idOrKey) ? this.#deps.store.getRepositoryById(Number(idOrKey)) : this.#deps.store.getRepository(idOrKey);
    return row ? this.#status(row, this.#entries.get(row.key)) : undefined;
  }

  projects(): ProjectInfo[] {
    const rows = this.#deps.store.listProjects({ includeInactive: true });
    const repos = this.#deps.store.listRepositories({ includeInactive: false });
    const infos: ProjectInfo[] = rows.map((p) => {
      const errors = this.#errors.filter((e) => p.file && e.file === p.file);
      return {
        name: p.name,
        description: p.description,
        file: p.file,
        active: p.active,
        error: errors.length ? errors : null,
        repositories: repos.filter((r) => r.project === p.name).length,
      };
    });
    return infos;
  }

  /** true when a compose project name belongs to a configured repository (container logs are limited to those). */
  isManagedProject(name: string): boolean {
    for (const e of this.#entries.values()) if (e.repo.composeProject === name) return true;
    return false;
  }

  /** The effective (resolved) config of a repository, if it is configured. */
  repoConfig(key: string): RepoConfig | undefined {
    return this.#entries.get(key)?.repo;
  }

  #entryFor(key: string): Entry {
    const entry = this.#entries.get(key);
    if (!entry) throw new NotFoundError(`repository ${key} is not active`);
    return entry;
  }

  // ---- commands ----------------------------------------------------------------------------------------

  check(key: string, trigger: 'webhook' | 'api'): boolean {
    const entry = this.#entries.get(key);
    if (!entry?.actor || this.#stopping) return false;
    if (entry.actor.getSnapshot().context.suspended) return false;
    entry.actor.send({ type: 'repo.check', trigger });
    return true;
  }

  deploy(key: string, opts: { trigger: 'api' | 'cli'; commit?: string }): { deploymentId: number } {
    return this.#requestDeploy(key, opts.trigger, opts.commit ?? null);
  }

  rollback(key: string, opts: { commit?: string }): { deploymentId: number } {
    const entry = this.#entryFor(key);
    let target = opts.commit ?? null;
    if (!target) {
      const current = entry.actor?.getSnapshot().context.lastDeployedCommit ?? null;
      const { items } = this.#deps.store.listDeployments(key, { limit: 100 });
      target = items.find((d) => d.status === 'success' && d.commit && d.commit !== current)?.commit ?? null;
      if (!target) throw new ConflictError(`repository ${key} has no earlier successful deployment to roll back to`);
    }
    return this.#requestDeploy(key, 'rollback', target);
  }

  #requestDeploy(key: string, trigger: 'api' | 'cli' | 'rollback', commit: string | null): { deploymentId: number } {
    const entry = this.#entryFor(key);
    if (this.#stopping) throw new ConflictError('Shiparr is shutting down');
    if (entry.failed || !entry.actor) throw new ConflictError(`repository ${key} actor is ${entry.failed ? 'failed' : 'restarting'}`);
    // The actor decides and records; its answer comes back as an emitted event while send() runs.
    let answer: { deploymentId: number } | { rejected: string } | null = null;
    const accepted = entry.actor.on('deploy.accepted', (e) => (answer = { deploymentId: e.deploymentId }));
    const rejected = entry.actor.on('deploy.rejected', (e) => (answer = { rejected: e.reason }));
    try {
      entry.actor.send({ type: 'repo.deploy', trigger, commit });
    } finally {
      accepted.unsubscribe();
      rejected.unsubscribe();
    }
    const a = answer as { deploymentId: number } | { rejected: string } | null;
    if (a && 'deploymentId' in a) return a;
    if (a?.rejected === 'suspended') throw new ConflictError(`repository ${key} is suspended; resume it first`);
    throw new ConflictError(`repository ${key} did not take the deploy request`);
  }

  suspend(key: string): RepoStatus {
    const entry = this.#entryFor(key);
    entry.actor?.send({ type: 'repo.suspend' });
    return this.get(key) as RepoStatus;
  }

  resume(key: string): RepoStatus {
    const entry = this.#entryFor(key);
    if (entry.failed) this.#respawn(key);
    entry.actor?.send({ type: 'repo.resume' });
    return this.get(key) as RepoStatus;
  }

  webhookTargets(): { key: string; url: string; branch: string; webhookSecret?: string }[] {
    return [...this.#entries.values()].map((e) => ({ key: e.repo.key, url: e.repo.url, branch: e.repo.branch, webhookSecret: e.repo.webhookSecret }));
  }

  subscribe(listener: (e: ActivityEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async waitForDeployment(id: number, timeoutMs: number): Promise<Deployment | undefined> {
    const done = (d: Deployment | undefined) => d !== undefined && d.status !== 'pending' && d.status !== 'running';
    const now = this.#deps.store.getDeployment(id);
    if (!now || done(now)) return now;
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve(this.#deps.store.getDeployment(id));
      };
      const unsubscribe = this.subscribe((e) => {
        if (e.type === 'deployment.finished' && e.deploymentId === id) finish();
      });
      const timer = setTimeout(finish, Math.max(0, timeoutMs));
      // The row may have finished between the first read and subscribing.
      if (done(this.#deps.store.getDeployment(id))) finish();
    });
  }

  /** Resolves when no actor is mid-deploy (or the timeout passes). Used by shutdown and tests. */
  async whenQuiet(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = [...this.#entries.values()].some((e) => e.actor && ['pulling', 'decrypting', 'applying', 'verifying', 'rollingBack', 'finishing', 'notifying'].includes(topState(e.actor.getSnapshot())));
      if (!busy) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Stops taking work, gives in-flight deploys `graceMs` to finish, then stops every actor (aborting tasks).
   * Deployments still open afterwards are marked `interrupted`, so no row is left `running`.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const quiet = await this.whenQuiet(graceMs);
    if (!quiet) this.#log.warn({ graceMs }, 'deploys still running after the grace period; interrupting them');
    for (const key of [...this.#entries.keys()]) this.#stopEntry(key);
    const interrupted = this.#deps.store.markInterrupted({ exceptSelfUpdate: true });
    if (interrupted.length) this.#log.warn({ deployments: interrupted.map((d) => d.id) }, 'marked open deployments interrupted');
    this.#listeners.clear();
  }
}
