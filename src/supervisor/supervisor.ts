/**
 * @module The supervisor's facade for the HTTP layer and the CLI (SupervisorPort): it runs the supervisor statechart
 * (supervisor-machine.ts: one deploy actor per repository, config diffs, restarts, events out), gives it the deploy
 * actors' logic with their effects, keeps the last good config per file, and offers the read view and the commands.
 */
import type Dockerode from 'dockerode';
import { createActor, waitFor, type ActorRefFrom } from 'xstate';
import type { Logger } from 'pino';
import type { ProjectConfig, RepoConfig } from '../config/schema.ts';
import type {
  ActivityEvent,
  ConfigIssue,
  ContainerCounts,
  Deployment,
  NotifyOutcome,
  ProjectInfo,
  ReloadResult,
  RepoStatus,
  VerifyResult,
} from '../domain/types.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { indexScheduler } from './scheduler-index.ts';
import { createRepoLogic, type HistoryWriter, type ImagePort, type RepoDeps } from '../actors/repo-actor.ts';
import { missingImages, readServiceImages, removePinOverride, writePinOverride } from '../compose/images.ts';
import { DeploySlots } from '../actors/deploy-slots.ts';
import type { Notice } from '../machines/deploy-machine.ts';
import type { ImageUpdateChange } from '../machines/reasons.ts';
import type { RunTask } from '../workers/types.ts';
import type { Store } from '../store/store.ts';
import type { RepositoryRow } from '../store/types.ts';
import { supervisorMachine, topState, type RepoEntry } from './supervisor-machine.ts';
import { BUSY, repoStatus } from './view.ts';

type RepoLogic = ReturnType<typeof createRepoLogic>;
type RepoActor = ActorRefFrom<RepoLogic>;

/** What the supervisor needs from the store (type only: it depends on the store's shape, not its code). */
type SupervisorStore = HistoryWriter &
  Pick<
    Store,
    | 'syncConfig'
    | 'getRepository'
    | 'repositoryIds'
    | 'getRepositoryById'
    | 'listRepositories'
    | 'listProjects'
    | 'getDeployment'
    | 'latestDeployment'
    | 'listDeployments'
    | 'markInterrupted'
  >;

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
  /** Deploys at once per Docker engine (0 or absent: only the global limit). */
  maxConcurrentDeploysPerHost?: number;
  secrets: { ageKeyFile?: string; ageKey?: string };
  random?: () => number;
  /** Check every repository as soon as its actor starts (default true). */
  checkOnStart?: boolean;
  /** Restart policy for crashed actors. */
  restart?: { max: number; windowMs: number; baseDelayMs: number };
  /** true for Shiparr's own compose project: its deployments are flagged self-update (see self-update.ts). */
  isSelf?: (composeProject: string) => boolean;
  /** Applies Shiparr's own compose project from a helper container (see RepoDeps.selfApply). */
  selfApply?: RepoDeps['selfApply'];
  /**
   * `<SHIPARR_DATA_PATH>/generated` (see RepoDeps.generatedDir). With it, successful deployments record the images
   * their services run and rollbacks pin them (exact rollback), through `images` (default: the engine, dockerode).
   */
  generatedDir?: string;
  images?: ImagePort;
  /** A repository's Docker engine: CLI environment and masked label (see RepoDeps.engine). */
  engine?: RepoDeps['engine'];
  /** Plan before applying and label services with content hashes (see RepoDeps.plan). */
  plan?: RepoDeps['plan'];
}

/** The images of a repository's compose project on its engine (compose/images.ts). */
/** Exact-rollback images through the engine; `dockerOf` gives a repository's engine client (TLS, ssh, contexts). */
export function engineImages(dockerOf?: (repo: RepoConfig) => Dockerode): ImagePort {
  const o = (repo: RepoConfig) => (dockerOf ? { docker: dockerOf(repo) } : { dockerHost: repo.dockerHost });
  return {
    read: (repo) => readServiceImages(repo.composeProject, o(repo)),
    missing: (repo, images) => missingImages(images, o(repo)),
    writePins: writePinOverride,
    removePins: removePinOverride,
  };
}
const ENGINE_IMAGES: ImagePort = engineImages();

/**
 * Boot spawns actors in slices of about this much main-thread time, yielding to the event loop (setImmediate)
 * between slices, so timers and HTTP requests are served while 1,000 repositories start.
 */
const BOOT_SLICE_MS = 10;
/** Actors spawned per `boot.spawn` event inside a slice (the slice's clock is read between events). */
const BOOT_BATCH = 2;
/** A boot config with at most this many repositories is spawned at once by start(), as before slicing. */
const BOOT_ALL_AT_ONCE = 50;

/** States a shutdown waits for (a check or an idle actor is stopped at once). */
const DEPLOYING = new Set([...BUSY].filter((state) => state !== 'checking'));

/** The id of a repository's latest deployment when a crash (or shutdown) interrupted it, else null. */
const interruptedId = (d: Deployment | undefined): number | null => (d?.status === 'interrupted' ? d.id : null);

/** Implements the HTTP layer's SupervisorPort (checked structurally where the daemon wires it; no import of http/). */
export class Supervisor {
  readonly #deps: SupervisorDeps;
  readonly #log: Logger;
  readonly #slots: DeploySlots;
  readonly #actor: ActorRefFrom<typeof supervisorMachine>;
  /** Last good config per file path: an invalid edit keeps the previous project. */
  #byFile = new Map<string, ProjectConfig>();
  #errors: ConfigIssue[] = [];
  #stopping = false;
  /** Reloads run one at a time (watcher, SIGHUP and the API may fire together): each waits for the one before. */
  #reloads: Promise<unknown> = Promise.resolve();
  /** Settles when every actor of the boot config is spawned (or the supervisor stops first). */
  #booted: Promise<void> = Promise.resolve();
  /** Row ids by key, read in one query while a config is applied (a new entry needs its id); null otherwise. */
  #ids: Map<string, number> | null = null;
  /** Container counts of a repository's compose project (a cache the HTTP wiring provides); none: null. */
  #counts: ((repo: RepoConfig) => ContainerCounts | null) | null = null;

  constructor(deps: SupervisorDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ component: 'supervisor' });
    this.#slots = new DeploySlots(deps.maxConcurrentDeploys, deps.maxConcurrentDeploysPerHost, (key) => {
      const engine = this.repoConfig(key)?.engine;
      return engine?.host ?? (engine?.context ? `context:${engine.context}` : 'default');
    });
    const random = deps.random ?? Math.random;
    const machine = supervisorMachine.provide({
      actions: {
        crashed: (_, p) =>
          this.#log.error({ err: p.error, repo: p.key, restarts: p.restarts }, 'repository actor crashed'),
        gaveUp: (_, { key, policy }) =>
          this.#log.error(
            { repo: key },
            `actor restarted ${policy.max} times within ${policy.windowMs / 1000}s; giving up until the config changes or it is resumed`,
          ),
      },
    });
    this.#actor = createActor(machine, {
      id: 'supervisor',
      input: {
        children: {
          // One logic for every repository (built once: a spawn then allocates only the actor's own state).
          logic: (
            (logic: RepoLogic) => () =>
              logic
          )(
            createRepoLogic({
              runTask: deps.runTask,
              history: deps.store,
              slots: this.#slots,
              verify: deps.verify,
              notify: deps.notify,
              secrets: deps.secrets,
              log: deps.log,
              // The actors' activity goes out unchanged, through the supervisor's events.
              report: (event) => this.#actor.send({ type: 'activity', event }),
              isSelf: deps.isSelf,
              selfApply: deps.selfApply,
              generatedDir: deps.generatedDir,
              images: deps.images ?? (deps.generatedDir ? ENGINE_IMAGES : undefined),
              engine: deps.engine,
              plan: deps.plan,
            }),
          ),
          input: (repo, start) => {
            const row = deps.store.getRepository(repo.key);
            const latest = deps.store.latestDeployment(repo.key);
            return {
              repo,
              lastDeployedCommit: row?.lastCommit ?? null,
              // A deployment cut off by a crash may have half-applied compose: forget the config hash so the first check
              // re-applies the target even when the commit did not change.
              lastConfigHash: latest?.status === 'interrupted' ? null : (row?.configHash ?? null),
              pinnedCommit: row?.pinnedCommit ?? null,
              suspended: row?.suspended ?? repo.suspended,
              // The boot check redeploys after an interrupted deployment: its reason is a recovery of that one.
              interruptedDeploymentId: interruptedId(latest),
              checkOnStart: start.checkOnStart,
              bootDelayMs: start.bootSpreadMs > 0 ? Math.round(random() * start.bootSpreadMs) : 0,
              jitter: random(),
            };
          },
          repoId: (key) => this.#ids?.get(key) ?? deps.store.getRepository(key)?.id ?? 0,
        },
        restart: deps.restart ?? { max: 5, windowMs: 10 * 60_000, baseDelayMs: 1_000 },
        checkOnStart: deps.checkOnStart ?? true,
        now: Date.now,
      },
    });
    // Every repository actor lives in this actor's system: a stopping actor must not scan every repository's poll.
    indexScheduler(this.#actor.system);
    this.#actor.start();
  }

  /**
   * Applies the first config and spawns its actors: the first slice now, the rest in slices with a yield to the event
   * loop between them (see {@link whenBooted}). Their first checks are spread over up to 30 s.
   */
  start(config: LoadedConfig): void {
    this.#apply(config, true);
    const pending = this.#actor.getSnapshot().context.pending.length;
    if (pending <= BOOT_ALL_AT_ONCE) this.#actor.send({ type: 'boot.spawn', count: pending });
    else if (this.#spawnSlice()) this.#booted = this.#spawnRest();
  }

  /** Resolves when every actor of the boot config has been spawned (or the supervisor stopped first). */
  whenBooted(): Promise<void> {
    return this.#booted;
  }

  /** Spawns pending boot actors for about BOOT_SLICE_MS; true when some are still pending. */
  #spawnSlice(): boolean {
    const t0 = performance.now();
    const pending = () => this.#actor.getSnapshot().context.pending.length;
    while (pending() > 0 && !this.#stopping) {
      this.#actor.send({ type: 'boot.spawn', count: BOOT_BATCH });
      if (performance.now() - t0 >= BOOT_SLICE_MS) break;
    }
    return pending() > 0 && !this.#stopping;
  }

  async #spawnRest(): Promise<void> {
    do await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#spawnSlice());
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
        repositories: p.repositories.map((r) => ({
          key: r.key,
          name: r.name,
          url: r.url,
          branch: r.branch,
          path: r.path,
          localPath: r.localPath,
          checkInterval: r.checkInterval,
        })),
      })),
      { keepProjects },
    );
    const wanted = new Map<string, RepoConfig>();
    for (const p of projects) for (const r of p.repositories) if (r.enabled) wanted.set(r.key, r);
    this.#ids = this.#deps.store.repositoryIds();
    try {
      this.#actor.send({ type: 'config.apply', repos: [...wanted.values()], boot, errors: config.errors.length });
    } finally {
      this.#ids = null;
    }
    const diff = this.#actor.getSnapshot().context.lastDiff;
    if (!boot) this.#log.info({ ...diff, errors: config.errors.length }, 'configuration applied');
    return diff;
  }

  reload(): Promise<ReloadResult> {
    const run = this.#reloads.then(async () => {
      const config = await this.#deps.loadConfig();
      for (const e of config.errors) this.#log.error({ file: e.file, path: e.path }, `config error: ${e.message}`);
      return { errors: config.errors, ...this.#apply(config, false) };
    });
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  // ---- read view ---------------------------------------------------------------------------------------

  #entries(): Record<string, RepoEntry> {
    return this.#actor.getSnapshot().context.repos;
  }

  #child(key: string): RepoActor | undefined {
    return (this.#actor.getSnapshot().children as Record<string, RepoActor | undefined>)[key];
  }

  #status(row: RepositoryRow, entry: RepoEntry | undefined): RepoStatus {
    const status = repoStatus(row, entry, entry ? this.#child(row.key)?.getSnapshot() : undefined);
    if (entry && this.#counts) status.containers = this.#counts(entry.repo);
    return status;
  }

  /** Gives RepoStatus.containers its source: a synchronous read of a cache (never an engine call per repository). */
  useContainerCounts(counts: (repo: RepoConfig) => ContainerCounts | null): void {
    this.#counts = counts;
  }

  list(): RepoStatus[] {
    const entries = this.#entries();
    return this.#deps.store
      .listRepositories({ includeInactive: false })
      .map((row) => this.#status(row, entries[row.key]));
  }

  get(idOrKey: number | string): RepoStatus | undefined {
    const row =
      typeof idOrKey === 'number'
        ? this.#deps.store.getRepositoryById(idOrKey)
        : /^\d+$/.test(idOrKey)
          ? this.#deps.store.getRepositoryById(Number(idOrKey))
          : this.#deps.store.getRepository(idOrKey);
    return row ? this.#status(row, this.#entries()[row.key]) : undefined;
  }

  projects(): ProjectInfo[] {
    const rows = this.#deps.store.listProjects({ includeInactive: true });
    const repos = this.#deps.store.listRepositories({ includeInactive: false });
    return rows.map((p) => {
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
  }

  /** true when a compose project name belongs to a configured repository (container logs are limited to those). */
  isManagedProject(name: string): boolean {
    return Object.values(this.#entries()).some((e) => e.repo.composeProject === name);
  }

  /** The effective (resolved) config of a repository, if it is configured. */
  repoConfig(key: string): RepoConfig | undefined {
    return this.#entries()[key]?.repo;
  }

  #entryFor(key: string): RepoEntry {
    const entry = this.#entries()[key];
    if (!entry) throw new NotFoundError(`repository ${key} is not active`);
    return entry;
  }

  // ---- commands ----------------------------------------------------------------------------------------

  /**
   * `triggeredBy` (e.g. `webhook:github`) is recorded on the deployment the check may start; `webhook` (provider and
   * delivery id) goes on its reason.
   */
  check(
    key: string,
    trigger: 'webhook' | 'api',
    opts: { triggeredBy?: string; webhook?: { provider: string; deliveryId: string | null } } = {},
  ): boolean {
    const child = this.#child(key);
    if (!child || this.#stopping) return false;
    if (child.getSnapshot().context.suspended) return false;
    child.send({
      type: 'repo.check',
      trigger,
      triggeredBy: opts.triggeredBy ?? null,
      ...(opts.webhook ? { webhook: opts.webhook } : {}),
    });
    return true;
  }

  /** `triggeredBy` (e.g. `token:ci`) is recorded on the deployment row (audit trail). */
  deploy(
    key: string,
    opts: { trigger: 'api' | 'cli'; commit?: string; triggeredBy?: string },
  ): { deploymentId: number } {
    return this.#requestDeploy(key, opts.trigger, opts.commit ?? null, opts.triggeredBy ?? null);
  }

  /**
   * Rolls back to a successful deployment, pinning the images it recorded (exact rollback): the one named by
   * `deploymentId`, else the newest success of `commit` (a commit without one is deployed as its tags name now), else
   * the newest success of another commit than the one deployed.
   * @throws NotFoundError for a deployment of no or another repository; ConflictError for one that did not succeed, or
   * when there is nothing to roll back to.
   */
  rollback(
    key: string,
    opts: { commit?: string; deploymentId?: number; triggeredBy?: string },
  ): { deploymentId: number } {
    this.#entryFor(key);
    const by = opts.triggeredBy ?? null;
    if (opts.deploymentId !== undefined) {
      const d = this.#deps.store.getDeployment(opts.deploymentId);
      if (!d || d.repoKey !== key)
        throw new NotFoundError(`deployment ${opts.deploymentId} not found in repository ${key}`);
      if (d.status !== 'success' || !d.commit)
        throw new ConflictError(
          `deployment ${d.id} ended ${d.status}: only a successful deployment can be rolled back to`,
        );
      return this.#requestDeploy(key, 'rollback', d.commit, by, d.id);
    }
    const { items } = this.#deps.store.listDeployments(key, { limit: 100 });
    const success = items.filter((d) => d.status === 'success' && d.commit);
    if (opts.commit) {
      const commit = opts.commit.toLowerCase();
      const d = success.find((s) => s.commit?.startsWith(commit));
      return this.#requestDeploy(key, 'rollback', d?.commit ?? commit, by, d?.id ?? null);
    }
    const current = this.#child(key)?.getSnapshot().context.lastDeployedCommit ?? null;
    const d = success.find((s) => s.commit !== current);
    if (!d?.commit) throw new ConflictError(`repository ${key} has no earlier successful deployment to roll back to`);
    return this.#requestDeploy(key, 'rollback', d.commit, by, d.id);
  }

  /**
   * The image watch (`image_updates: auto`): deploys the commit deployed now again, pulling the services whose tag
   * moved (trigger `image-update`, the changes on its reason). A suspended repository refuses it like any deploy.
   * @throws ConflictError when nothing is deployed yet, or the repository is suspended, failed or shutting down.
   */
  imageUpdate(key: string, changes: ImageUpdateChange[]): { deploymentId: number } {
    this.#entryFor(key);
    const commit = this.#child(key)?.getSnapshot().context.lastDeployedCommit ?? null;
    if (!commit) throw new ConflictError(`repository ${key} has no deployed commit to redeploy`);
    return this.#requestDeploy(key, 'image-update', commit, null, null, changes);
  }

  #requestDeploy(
    key: string,
    trigger: 'api' | 'cli' | 'rollback' | 'image-update',
    commit: string | null,
    triggeredBy: string | null,
    rollbackTo: number | null = null,
    imageUpdate: ImageUpdateChange[] | null = null,
  ): { deploymentId: number } {
    const entry = this.#entryFor(key);
    const child = this.#child(key);
    if (this.#stopping) throw new ConflictError('Shiparr is shutting down');
    if (entry.failed || !child)
      throw new ConflictError(
        `repository ${key} actor is ${entry.failed ? 'failed' : entry.state === 'boot' ? 'starting' : 'restarting'}`,
      );
    // The actor decides and records; its answer comes back as an emitted event while send() runs.
    let answer: { deploymentId: number } | { rejected: string } | null = null;
    const accepted = child.on('deploy.accepted', (e) => (answer = { deploymentId: e.deploymentId }));
    const rejected = child.on('deploy.rejected', (e) => (answer = { rejected: e.reason }));
    try {
      child.send({
        type: 'repo.deploy',
        trigger,
        commit,
        triggeredBy,
        ...(rollbackTo === null ? {} : { rollbackTo }),
        ...(imageUpdate === null ? {} : { imageUpdate }),
      });
    } finally {
      accepted.unsubscribe();
      rejected.unsubscribe();
    }
    const a = answer as { deploymentId: number } | { rejected: string } | null;
    if (a && 'deploymentId' in a) return a;
    if (a?.rejected === 'suspended') throw new ConflictError(`repository ${key} is suspended; resume it first`);
    throw new ConflictError(`repository ${key} did not take the deploy request`);
  }

  suspend(key: string, opts: { triggeredBy?: string } = {}): RepoStatus {
    this.#entryFor(key);
    this.#log.info({ repo: key, by: opts.triggeredBy ?? null }, 'suspend requested');
    this.#child(key)?.send({ type: 'repo.suspend' });
    return this.get(key) as RepoStatus;
  }

  resume(key: string, opts: { triggeredBy?: string } = {}): RepoStatus {
    this.#log.info({ repo: key, by: opts.triggeredBy ?? null }, 'resume requested');
    if (this.#entryFor(key).failed) this.#actor.send({ type: 'repo.respawn', key });
    this.#child(key)?.send({ type: 'repo.resume' });
    return this.get(key) as RepoStatus;
  }

  webhookTargets(): { key: string; url: string; branch: string; webhookSecret?: string }[] {
    return Object.values(this.#entries()).map(({ repo }) => ({
      key: repo.key,
      url: repo.url,
      branch: repo.branch,
      webhookSecret: repo.webhookSecret,
    }));
  }

  /**
   * Runs `work` while no deploy of `key` can run: refused (returns `{ busy: true }`) while one runs or waits for a
   * slot; a deploy that starts meanwhile waits for its slot until `work` settles.
   */
  async exclusive<T>(key: string, work: () => Promise<T>): Promise<{ busy: true } | { busy: false; value: T }> {
    this.#entryFor(key);
    const child = this.#child(key);
    if (this.#stopping) throw new ConflictError('Shiparr is shutting down');
    if (child !== undefined && DEPLOYING.has(topState(child.getSnapshot()))) return { busy: true };
    if (!this.#slots.tryLock(key)) return { busy: true };
    try {
      return { busy: false, value: await work() };
    } finally {
      this.#slots.unlock(key);
    }
  }

  /** Clears the pinned bad commit: an event to the repository's actor, which owns `pinned_commit`. */
  unpin(key: string, opts: { triggeredBy?: string } = {}): void {
    this.#entryFor(key);
    this.#log.info({ repo: key, by: opts.triggeredBy ?? null }, 'unpin requested');
    const child = this.#child(key);
    if (!child) throw new ConflictError(`repository ${key} actor is not running; resume it first`);
    child.send({ type: 'repo.unpin' });
  }

  /** Sends an event out to every subscriber (SSE, metrics), like the actors' own activity. */
  announce(event: ActivityEvent): void {
    this.#actor.send({ type: 'activity', event });
  }

  subscribe(listener: (e: ActivityEvent) => void): () => void {
    const sub = this.#actor.on('*', (e) => {
      try {
        listener(e);
      } catch (err) {
        this.#log.warn({ err }, 'event listener failed');
      }
    });
    return () => sub.unsubscribe();
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

  /** Resolves true when no actor is mid-deploy, false when `timeoutMs` passes first. Used by shutdown. */
  async whenQuiet(timeoutMs: number): Promise<boolean> {
    const children = Object.values(this.#actor.getSnapshot().children) as RepoActor[];
    // A self-update being applied is handed over: its compose runs in a helper container that outlives this process
    // (and is what stops it), and the next process finalises the row, which stays open.
    const handedOver = (s: ReturnType<RepoActor['getSnapshot']>): boolean =>
      topState(s) === 'applying' &&
      this.#deps.selfApply !== undefined &&
      this.#deps.isSelf?.(s.context.repo.composeProject) === true;
    // An actor that stops or crashes while waited for is quiet too.
    const quiet = Promise.all(
      children.map((c) => waitFor(c, (s) => !DEPLOYING.has(topState(s)) || handedOver(s)).catch(() => undefined)),
    ).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs))));
    try {
      return await Promise.race([quiet, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops taking work, gives in-flight deploys `graceMs` to finish, then stops the supervisor and with it every
   * actor (aborting tasks). Deployments still open afterwards are marked `interrupted`, so no row is left `running`.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#actor.send({ type: 'supervisor.stopping' });
    const quiet = await this.whenQuiet(graceMs);
    if (!quiet) this.#log.warn({ graceMs }, 'deploys still running after the grace period; interrupting them');
    this.#actor.stop();
    const interrupted = this.#deps.store.markInterrupted({ exceptSelfUpdate: true });
    if (interrupted.length)
      this.#log.warn({ deployments: interrupted.map((d) => d.id) }, 'marked open deployments interrupted');
  }
}
