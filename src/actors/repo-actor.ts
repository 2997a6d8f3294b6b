/**
 * @module Provides the deploy machine's effects for one repository: worker-pool tasks (git, SOPS, compose),
 * health verification, notifications and history writes. Collaborators come in as explicit deps.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fromCallback, fromPromise } from 'xstate';
import type { Logger } from 'pino';
import type { RepoConfig } from '../config/schema.ts';
import type {
  CreateDeploymentInput,
  Deployment,
  DeployStage,
  DeploymentPatch,
  DeploymentReason,
  FinalDeploymentStatus,
  FinishDeploymentInput,
  NotifyOutcome,
  PlaintextFile,
  RepoActivity,
  ServiceImage,
  ServicePlan,
  VerifyResult,
} from '../domain/types.ts';
import { TaskError } from '../errors.ts';
import { deployMachine, type Notice } from '../machines/deploy-machine.ts';
import type { Run, SlotIn, StepError } from '../machines/types.ts';
import { openingReason, refineReason } from '../machines/reasons.ts';
import type { RunTask } from '../workers/types.ts';
import { removePlaintext } from '../workers/plaintext.ts';
import type { TaskResult } from '../lib/task-result.ts';
import type { DeploySlots } from './deploy-slots.ts';

/**
 * The store methods the actor layer writes with: the repository actor is the single writer of its deployment rows
 * and of its repository's flags (suspended, pin, last check).
 */
export interface HistoryWriter {
  createDeployment(i: CreateDeploymentInput): { id: number };
  updateDeployment(id: number, patch: DeploymentPatch): void;
  appendDeploymentLog(id: number, text: string): void;
  finishDeployment(id: number, r: FinishDeploymentInput): void;
  setDeploymentNotifications(id: number, results: unknown[]): void;
  /** Plaintext files a deployment wrote (recorded before compose runs; see workers/plaintext.ts). */
  recordPlaintext(id: number, files: readonly PlaintextFile[]): void;
  /** The deployment's plaintext is removed (or kept on purpose): nothing left for the boot sweep. */
  markPlaintextHandled(id: number): void;
  /** Plaintext files recent deployments of a repository wrote: the ones an output may be overwritten over. */
  ownedPlaintext(repoKey: string): PlaintextFile[];
  updateRepositoryState(
    key: string,
    patch: Partial<{
      pinnedCommit: string | null;
      suspended: boolean | null;
      lastCheckedAt: string;
      lastSeenCommit: string | null;
    }>,
  ): void;
  /** One deployment (an exact rollback reads the images the deployment it rolls back to recorded). */
  getDeployment?(id: number): Deployment | undefined;
  /** A repository's deployments, newest first (the automatic rollback's last good deployment). */
  listDeployments?(repoKey: string, q: { limit: number }): { items: Deployment[] };
}

/** The images a project's services run, and the pin override of an exact rollback (compose/images.ts). */
export interface ImagePort {
  read(repo: RepoConfig): Promise<ServiceImage[]>;
  /** The images of `images` the engine no longer has. */
  missing(repo: RepoConfig, images: readonly ServiceImage[]): Promise<ServiceImage[]>;
  /** Writes the pin override into `dir`; resolves to its path. */
  writePins(dir: string, images: readonly ServiceImage[]): Promise<string>;
  /** Removes the pin override Shiparr wrote into `dir`; true when there was one. */
  removePins(dir: string): Promise<boolean>;
}

export interface RepoDeps {
  runTask: RunTask;
  history: HistoryWriter;
  slots: DeploySlots;
  verify(repo: RepoConfig, signal: AbortSignal): Promise<VerifyResult>;
  notify(repo: RepoConfig, notice: Notice): Promise<NotifyOutcome[]>;
  /**
   * `plaintextDir`: absolute private directory; with `build: true` a dotenv `env_file` is decrypted into
   * `<plaintextDir>/<repo>/.env` and given to compose with `--env-file`, so `COPY . .` cannot bake it into an image.
   */
  secrets: { ageKeyFile?: string; ageKey?: string; plaintextDir?: string };
  /** The daemon's logger: each repository logs through a child bound to `{ repo: key }`. */
  log: Logger;
  report(e: RepoActivity): void;
  /** Random in [0,1) for poll jitter (injectable for tests). */
  random?: () => number;
  /** true when a compose project is the one Shiparr itself runs in (see compose/self-update.ts). */
  isSelf?: (composeProject: string) => boolean;
  /**
   * Applies Shiparr's own compose project from a helper container that outlives ours (self-update-helper.ts);
   * without it, self-updates run compose in this process like any other project.
   */
  selfApply?: (repo: RepoConfig, deploymentId: number, signal: AbortSignal) => Promise<TaskResult<{ output: string }>>;
  /**
   * Records the images each service runs after a successful verify, and pins them on a rollback (exact rollback).
   * Without it (or without `generatedDir`) nothing is recorded and rollbacks run what the tags name.
   */
  images?: ImagePort;
  /** `<SHIPARR_DATA_PATH>/generated`: the compose files Shiparr generates go to `<generatedDir>/<project>/<repo>/`. */
  generatedDir?: string;
  /**
   * The repository's Docker engine (compose/engine.ts via the daemon's effects): its CLI environment and a label
   * without credentials for messages; throws when the settings cannot work. Without it, compose gets `dockerHost`.
   */
  engine?: (repo: RepoConfig) => {
    env: Readonly<Record<string, string>>;
    label: string;
    /** For a remote engine: what in the compose files will not work there (logged as warnings before compose up). */
    composeWarnings?: (cwd: string, files: readonly string[]) => Promise<string[]>;
  };
  /**
   * Plans before applying (skips deploys that change nothing) and labels every service with Shiparr's content hashes
   * through a generated override file. `hmacKey`: the per-install key (hex) for environment values; `generatedDir`:
   * `<data dir>/generated`. Without it, runs apply without a plan and without the override.
   */
  plan?: { hmacKey: string; generatedDir: string };
}

/**
 * Registry credentials for a compose task, and where its private DOCKER_CONFIG goes: the data dir's scratch area
 * (next to the plaintext dir; cleared at boot), else the system temp dir.
 */
function registryInput(
  repo: Pick<RepoConfig, 'registries'>,
  plaintextDir: string | undefined,
): { registryAuths?: NonNullable<RepoConfig['registries']>; scratchDir?: string } {
  if (!repo.registries) return {};
  return {
    registryAuths: repo.registries,
    ...(plaintextDir ? { scratchDir: path.join(path.dirname(plaintextDir), 'scratch') } : {}),
  };
}

/** The content-label override of a repository: `<generated>/<project>/<repo>/content-labels.json`. */
function contentOverridePath(generatedDir: string, repo: Pick<RepoConfig, 'project' | 'name'>): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^\.+/, '_');
  return path.join(generatedDir, safe(repo.project), safe(repo.name), 'content-labels.json');
}

/** One line per plan: `svc action (reasons)`, separated by `; `. */
function planSummary(services: readonly ServicePlan[]): string {
  return services
    .map((s) => `${s.service} ${s.action}${s.reasons.length ? ` (${s.reasons.join('; ')})` : ''}`)
    .join('; ');
}

const ts = () => new Date().toISOString();
/** Live output of a stage as `deployment.log` events (the stored log is written separately, as before). */
const liveLog = (deps: Pick<RepoDeps, 'report'>, repoKey: string, id: number | null, stage: DeployStage) =>
  id === null
    ? undefined
    : (lines: string[]) => deps.report({ type: 'deployment.log', repoKey, deploymentId: id, stage, lines, at: ts() });
const short = (c: string | null | undefined) => (c ? c.slice(0, 12) : '-');

/** Abs compose directory of a repository checkout. */
function composeDir(repo: RepoConfig): string {
  return path.resolve(repo.localPath, repo.path);
}

/** Shiparr's private directory for a repository's env file (a hash keeps any repository key a safe file name). */
function privateEnvDir(root: string, repo: RepoConfig): string {
  const slug = repo.key.replace(/[^A-Za-z0-9_-]+/g, '-');
  return path.join(root, `${slug}-${createHash('sha256').update(repo.key).digest('hex').slice(0, 8)}`);
}

/**
 * Provides the deploy machine with real effects. One logic serves every repository (spawning an actor then allocates
 * only its own snapshot): what a repository's run keeps between its steps lives in maps keyed by the repository key
 * (its checkout is its own, so two runs of one key never overlap) or by the deployment id.
 */
export function createRepoLogic(deps: RepoDeps) {
  const { runTask, history } = deps;
  // Plaintext files of each repository's last decrypt: compose-up reads their values to mask them in its output.
  const decryptedFiles = new Map<string, string[]>();
  // Per repository, for its current run: the identities of the plaintext files written (to remove only those), and
  // the env file for `--env-file`.
  const written = new Map<string, Map<string, PlaintextFile>>();
  const envFiles = new Map<string, string>();
  // A child logger per line logged (warnings and outcomes only), not one held per repository.
  const logOf = (repo: Pick<RepoConfig, 'key'>) => deps.log.child({ repo: repo.key });
  const logTo = (id: number | null, line: string) => {
    if (id !== null) history.appendDeploymentLog(id, `[${ts()}] ${line}\n`);
  };
  // Exact rollback: the deployment each manual rollback row rolls back to, and per repository the images the current
  // apply pinned (by service), so that what verify records names the compose reference, not the pin.
  const rollbackTargets = new Map<number, number>();
  const pinnedNow = new Map<string, Map<string, ServiceImage>>();
  // The reason of each row this actor opened, until its run is notified: refined after the sync, sent with the notice.
  const reasons = new Map<number, DeploymentReason>();
  // Image-update rows: the services whose tag moved, pulled before `up` by that deployment (never by its rollback).
  const imagePulls = new Map<number, string[]>();
  // A deployment row is opened here only: for an accepted deploy request, or when a check starts a run. It gets its
  // reason at once (never empty), refined by the pull once the commit range is known.
  const openRow = (
    repo: RepoConfig,
    run: Pick<Run, 'trigger' | 'commit' | 'previousCommit' | 'triggeredBy' | 'cause'> & { forced?: boolean },
  ) => {
    const reason = openingReason(run);
    const { id } = history.createDeployment({
      repoKey: repo.key,
      trigger: run.trigger,
      triggeredBy: run.triggeredBy ?? null,
      status: 'pending',
      commit: run.commit,
      previousCommit: run.previousCommit,
      configHash: repo.configHash,
      reason,
    });
    reasons.set(id, reason);
    return id;
  };
  // What the plan task reads: the live checkout as compose will see it (the env file of this run's decrypt).
  const planInput = (repo: RepoConfig, hmacKey: string) => {
    const envFile = envFiles.get(repo.key);
    return {
      cwd: composeDir(repo),
      rootDir: repo.localPath,
      project: repo.composeProject,
      files: repo.composeFiles,
      ...(envFile !== undefined ? { envFile } : {}),
      dockerHost: repo.dockerHost,
      removeOrphans: repo.removeOrphans,
      hmacKey,
      timeoutMs: repo.timeouts.apply * 1000,
      secretFiles: repo.decrypt.length ? (decryptedFiles.get(repo.key) ?? []) : [],
    };
  };
  const failWith = (
    stage: DeployStage,
    id: number | null,
    r: { code: string; message: string; transient: boolean; output?: string },
  ) => {
    logTo(id, `${stage}: FAILED ${r.code}: ${r.message}${r.output ? `\n${r.output.trimEnd()}` : ''}`);
    const err = new TaskError(stage, r.code, r.message, { transient: r.transient });
    return Object.assign(err, { output: r.output });
  };

  /**
   * The deployment an apply rolls back to: for the automatic rollback the newest success of the previous commit, for a
   * manual one the deployment it named; undefined for a normal deploy, null when the rollback has no recorded target.
   */
  const rollbackTarget = (
    repo: RepoConfig,
    id: number | null,
    commit: string | null,
    rollingBack: boolean,
  ): Deployment | null | undefined => {
    if (rollingBack) {
      const items = history.listDeployments?.(repo.key, { limit: 100 }).items ?? [];
      return items.find((d) => d.status === 'success' && d.commit === commit) ?? null;
    }
    const target = id === null ? undefined : rollbackTargets.get(id);
    if (target === undefined) return undefined;
    return history.getDeployment?.(target) ?? null;
  };
  /**
   * The generated override files of an apply. A rollback pins every service to the image its target deployment
   * recorded (a missing image fails the apply, naming service and image); a normal deploy drops the pins (the file
   * is removed).
   */
  const pinImages = async (
    repo: RepoConfig,
    id: number | null,
    target: Deployment | null | undefined,
  ): Promise<string[]> => {
    const images = deps.images;
    pinnedNow.delete(repo.key);
    if (!images || !deps.generatedDir) return [];
    const dir = path.join(deps.generatedDir, repo.project, repo.name);
    const recorded = target?.serviceImages ?? [];
    if (!target || recorded.length === 0) {
      const dropped = await images.removePins(dir);
      if (target !== undefined)
        logTo(
          id,
          `applying: rollback without recorded images (${target ? `deployment ${target.id} recorded none` : 'no successful deployment of this commit is recorded'}): services run what their tags name now`,
        );
      else if (dropped)
        logTo(id, 'applying: image pins of the last rollback dropped; services run what their tags name');
      return [];
    }
    const missing = await images.missing(repo, recorded).catch((err: unknown) => {
      throw failWith('applying', id, {
        code: 'ROLLBACK_PIN_FAILED',
        message: `could not look up the images deployment ${target.id} ran: ${(err as Error).message}`,
        transient: false,
      });
    });
    if (missing.length > 0)
      throw failWith('applying', id, {
        code: 'ROLLBACK_IMAGE_MISSING',
        message:
          `the engine no longer has the image${missing.length > 1 ? 's' : ''} deployment ${target.id} ran: ` +
          missing.map((m) => `service ${m.service}: ${m.image} (${m.imageId})`).join(', ') +
          '; deploy the commit instead to run what its tags name now',
        transient: false,
      });
    const file = await images.writePins(dir, recorded);
    pinnedNow.set(repo.key, new Map(recorded.map((r) => [r.service, r])));
    logTo(
      id,
      `applying: exact rollback to deployment ${target.id}: pinned ${recorded
        .map((r) => `${r.service}=${r.image} as ${r.digest ?? r.imageId}`)
        .join(', ')}`,
    );
    return [file];
  };
  /** After a successful verify: the image each service runs goes on the row (never fails the deploy). */
  const recordImages = async (repo: RepoConfig, id: number) => {
    if (!deps.images) return;
    try {
      const pinned = pinnedNow.get(repo.key);
      const now = (await deps.images.read(repo)).map((i) => {
        const pin = pinned?.get(i.service);
        return pin && i.image === (pin.digest ?? pin.imageId)
          ? { ...i, image: pin.image, digest: i.digest ?? pin.digest }
          : i;
      });
      history.updateDeployment(id, { serviceImages: now });
      logTo(
        id,
        `verifying: images recorded: ${now.map((i) => `${i.service}=${i.image} (${i.imageId})`).join(', ') || 'none'}`,
      );
    } catch (err) {
      logOf(repo).warn({ err, deploymentId: id }, 'could not record the images the services run');
      logTo(id, `verifying: could not record the images the services run: ${(err as Error).message}`);
    }
  };

  return deployMachine.provide({
    actors: {
      check: fromPromise(async ({ input, signal }) => {
        const r = await runTask(
          'git-check',
          {
            url: input.repo.url,
            branch: input.repo.branch,
            token: input.repo.token,
            timeoutMs: input.repo.timeouts.git * 1000,
          },
          signal,
        );
        if (!r.ok) throw failWith('checking', null, r);
        return { commit: r.commit };
      }),
      openRun: fromPromise(async ({ input }) => {
        const { repo, run } = input;
        if (run.deploymentId === null) return { deploymentId: openRow(repo, run) };
        history.updateDeployment(run.deploymentId, {
          commit: run.commit,
          previousCommit: run.previousCommit,
          configHash: repo.configHash,
        });
        return { deploymentId: run.deploymentId };
      }),
      // Waits for a global deploy slot and holds it while the run lives. The one place a slot is released: when this
      // actor stops (the run reached finishing, or the repository actor was stopped), or when its owner dies of an
      // error (XState leaves a crashed actor's children running, so the owner is watched too).
      deploySlot: fromCallback<{ type: 'slot.acquired' }, SlotIn>(({ input, sendBack }) => {
        const { key, deploymentId, owner } = input;
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          deps.slots.release(key);
        };
        if (deps.slots.inUse > 0) logTo(deploymentId, 'waiting for a free deploy slot');
        deps.slots.acquire(key).then(
          () => {
            if (!released) sendBack({ type: 'slot.acquired' });
          },
          () => undefined,
        );
        const owned = owner.subscribe({ error: release, complete: release });
        return () => {
          owned.unsubscribe();
          release();
        };
      }),
      pull: fromPromise(async ({ input, signal }) => {
        const { repo, deploymentId: id } = input;
        if (id !== null) history.updateDeployment(id, { stage: 'pulling' });
        envFiles.delete(repo.key);
        const r = await runTask(
          'git-sync',
          {
            url: repo.url,
            branch: repo.branch,
            commit: input.commit ?? undefined,
            ...(input.since !== undefined ? { since: input.since } : {}),
            dir: repo.localPath,
            shallow: repo.shallow,
            token: repo.token,
            timeoutMs: repo.timeouts.git * 1000,
          },
          signal,
        );
        if (!r.ok) throw failWith('pulling', id, r);
        const how = r.gitDirReplaced ? ' (.git re-cloned, other files kept)' : r.cloned ? ' (fresh clone)' : '';
        if (r.fetched === 'by-hash')
          logTo(id, `pulling: ${short(r.commit)} is not in the shallow history: fetched by its hash`);
        else if (r.fetched === 'deepened')
          logTo(id, `pulling: ${short(r.commit)} is not in the shallow history: the history was deepened to reach it`);
        logTo(id, `pulling: checked out ${short(r.commit)}${how} in ${r.durationMs} ms`);
        liveLog(
          deps,
          repo.key,
          id,
          'pulling',
        )?.([`checked out ${short(r.commit)}${how}${r.subject ? `: ${r.subject}` : ''}`]);
        // The deploy's own sync (not a rollback's) knows the range of new commits: the reason says it from now on.
        const opened = id !== null && input.since !== undefined ? reasons.get(id) : undefined;
        const reason = opened ? refineReason(opened, input.since ?? null, r.commit, r.range ?? null) : undefined;
        if (id !== null && reason) {
          reasons.set(id, reason);
          if (reason !== opened) logTo(id, `why: ${reason.summary}`);
        }
        if (id !== null)
          history.updateDeployment(id, {
            commit: r.commit,
            commitSubject: r.subject ?? null,
            ...(reason ? { reason } : {}),
          });
        return { commit: r.commit };
      }),
      decrypt: fromPromise(async ({ input, signal }) => {
        const { repo, deploymentId: id } = input;
        if (id !== null) history.updateDeployment(id, { stage: 'decrypting' });
        envFiles.delete(repo.key);
        const plaintextDir = deps.secrets.plaintextDir;
        const r = await runTask(
          'sops-decrypt',
          {
            baseDir: composeDir(repo),
            rootDir: repo.localPath,
            files: repo.decrypt,
            ageKeyFile: deps.secrets.ageKeyFile,
            ageKey: deps.secrets.ageKey,
            timeoutMs: repo.timeouts.decrypt * 1000,
            owned: history.ownedPlaintext(repo.key),
            ...(repo.build && plaintextDir ? { envFileDir: privateEnvDir(plaintextDir, repo) } : {}),
          },
          signal,
        );
        if (!r.ok) throw failWith('decrypting', id, r);
        decryptedFiles.set(repo.key, r.written);
        liveLog(deps, repo.key, id, 'decrypting')?.([`${r.written.length} file(s) decrypted`]);
        // Recorded before compose runs: a crash from here on leaves the boot sweep the exact files to remove.
        const mine = written.get(repo.key) ?? new Map<string, PlaintextFile>();
        for (const f of r.files ?? []) mine.set(f.path, f);
        if (mine.size > 0) written.set(repo.key, mine);
        if (id !== null && r.files) history.recordPlaintext(id, r.files);
        if (r.envFile !== undefined) envFiles.set(repo.key, r.envFile);
        logTo(
          id,
          `decrypting: ${r.written.length} file(s) decrypted (${repo.decrypt.map((d) => d.file).join(', ')})` +
            (r.envFile ? `; env file kept out of the build context, passed with --env-file` : ''),
        );
        return { written: r.written };
      }),
      plan: fromPromise(async ({ input, signal }) => {
        const { repo, deploymentId: id } = input;
        if (!deps.plan) return { noop: false, services: [] };
        const r = await runTask(
          'plan',
          { step: 'plan', ...planInput(repo, deps.plan.hmacKey), removeOrphans: repo.removeOrphans },
          signal,
        );
        if (!r.ok || !r.services) {
          logTo(id, `planning: no plan (${r.ok ? 'empty answer' : `${r.code}: ${r.message}`}); applying`);
          return { noop: false, services: [] };
        }
        const services = r.services;
        // Beyond what a plan can see: a build context (`build: true`) or a registry (`pull: always`) may have changed.
        const unseen = repo.build ? 'build: true' : repo.pull === 'always' ? 'pull: always' : null;
        const noop = r.noop === true && unseen === null;
        if (id !== null) history.updateDeployment(id, { plan: services });
        logTo(
          id,
          `planning: ${planSummary(services) || 'no services'}` +
            (r.noop === true && unseen !== null
              ? ` — nothing to change that a plan can see, but ${unseen}: applying`
              : noop
                ? input.forced
                  ? ' — nothing to change; a forced deploy applies anyway'
                  : ' — nothing to change: compose not run, deployment skipped'
                : ''),
        );
        return { noop, services };
      }),
      apply: fromPromise(async ({ input, signal }) => {
        const { repo, deploymentId: id } = input;
        if (id !== null) history.updateDeployment(id, { stage: 'applying' });
        const envFile = envFiles.get(repo.key);
        let engine: ReturnType<NonNullable<RepoDeps['engine']>> | undefined;
        try {
          engine = deps.engine?.(repo);
        } catch (err) {
          throw failWith('applying', id, {
            code: 'DOCKER_HOST_INVALID',
            message: (err as Error).message,
            transient: false,
          });
        }
        // An image update pulls the services whose tag moved (compose), or resolves every image again (Swarm).
        const pullServices = id !== null && !input.rollingBack ? imagePulls.get(id) : undefined;
        if (pullServices) logTo(id, `applying: image update: pulling ${pullServices.join(', ')}`);
        // mode swarm: the same compose files, deployed as a stack (also when rolling back to the last good commit).
        if (repo.mode === 'swarm') {
          const s = await runTask(
            'stack-deploy',
            {
              cwd: composeDir(repo),
              rootDir: repo.localPath,
              project: repo.composeProject,
              files: repo.composeFiles,
              dockerHost: repo.dockerHost,
              ...(engine !== undefined ? { engineEnv: engine.env } : {}),
              // `--resolve-image always`: the stack's services take the digest their tag names now.
              pull: pullServices ? 'always' : repo.pull,
              prune: repo.removeOrphans,
              timeoutMs: repo.timeouts.apply * 1000,
              secretFiles: repo.decrypt.length ? (decryptedFiles.get(repo.key) ?? []) : [],
              ...(envFile !== undefined ? { envFile } : {}),
              ...(deps.secrets.plaintextDir
                ? { nameKeyFile: path.join(deps.secrets.plaintextDir, 'swarm-names.key') }
                : {}),
            },
            signal,
          );
          if (!s.ok) throw failWith('applying', id, s);
          logTo(id, `applying: docker stack deploy ${repo.composeProject} (${s.durationMs} ms)\n${s.output.trimEnd()}`);
          return { output: s.output };
        }
        // Shiparr's content labels (bind-mounted files, inline configs, env), so compose recreates what they changed.
        let overrideFiles: string[] = [];
        const applyStarted = Date.now();
        const self0 = id !== null && deps.isSelf?.(repo.composeProject) === true && deps.selfApply !== undefined;
        if (deps.plan && !self0) {
          const out = contentOverridePath(deps.plan.generatedDir, repo);
          const o = await runTask('plan', { step: 'labels', out, ...planInput(repo, deps.plan.hmacKey) }, signal);
          // Without the labels compose still applies (e.g. compose v1 has no `config --format json`): as before plans.
          if (o.ok) overrideFiles = [out];
          else logTo(id, `applying: no content labels (${o.code}: ${o.message}); compose runs without them`);
        }
        // Compose may replace our own container: flag the row first so the next boot finalises it.
        const self = id !== null && deps.isSelf?.(repo.composeProject) === true;
        if (self) {
          history.updateDeployment(id, { selfUpdate: true });
          logTo(
            id,
            `applying: ${repo.composeProject} is Shiparr's own compose project (self-update)${deps.selfApply ? ': compose runs in a helper container' : ''}; the result is confirmed at the next start if this process is replaced`,
          );
        }
        // The helper container applies Shiparr's own project with its own files: no pins there.
        const helper = id !== null && self && deps.selfApply !== undefined;
        const pins = helper
          ? []
          : await pinImages(repo, id, rollbackTarget(repo, id, input.commit, input.rollingBack === true));
        // Pinned images are on the engine (checked above): nothing to pull, and nothing to build over them.
        const pinned = pins.length > 0;
        // The pins come last: they override the image of the services they name, labels included.
        const overrides = [...overrideFiles, ...pins];
        for (const w of (await engine?.composeWarnings?.(composeDir(repo), repo.composeFiles)) ?? [])
          logTo(id, `applying: warning: engine ${engine?.label}: ${w}`);
        const r =
          id !== null && self && deps.selfApply
            ? await deps.selfApply(repo, id, signal)
            : await runTask(
                'compose-up',
                {
                  cwd: composeDir(repo),
                  rootDir: repo.localPath,
                  project: repo.composeProject,
                  files: repo.composeFiles,
                  dockerHost: repo.dockerHost,
                  ...(engine !== undefined ? { engineEnv: engine.env } : {}),
                  pull: pinned && repo.pull === 'always' ? 'missing' : repo.pull,
                  build: repo.build && !pinned,
                  removeOrphans: repo.removeOrphans,
                  // The labels step above spends from the same budget: `timeouts.apply` bounds the whole step.
                  timeoutMs: Math.max(1_000, repo.timeouts.apply * 1000 - (Date.now() - applyStarted)),
                  secretFiles: repo.decrypt.length ? (decryptedFiles.get(repo.key) ?? []) : [],
                  ...(envFile !== undefined ? { envFile } : {}),
                  ...(overrides.length ? { overrideFiles: overrides } : {}),
                  ...(pullServices && !pinned ? { pullServices } : {}),
                  ...registryInput(repo, deps.secrets.plaintextDir),
                },
                signal,
                { onLines: liveLog(deps, repo.key, id, 'applying') },
              );
        // An engine that cannot be reached is named (masked), so one down engine among several is easy to spot.
        if (!r.ok && r.code === 'DOCKER_UNREACHABLE' && engine && engine.label !== 'default')
          throw failWith('applying', id, { ...r, message: `${r.message} (engine ${engine.label})` });
        if (!r.ok) throw failWith('applying', id, r);
        logTo(id, `applying: docker compose up -d (${r.durationMs} ms)\n${r.output.trimEnd()}`);
        return { output: r.output };
      }),
      verify: fromPromise(async ({ input, signal }) => {
        const { repo, deploymentId: id } = input;
        if (id !== null) history.updateDeployment(id, { stage: 'verifying' });
        const r = await deps.verify(repo, signal);
        if (!r.ok) throw failWith('verifying', id, r);
        logTo(id, `verifying: ${r.summary}`);
        if (id !== null && !input.rollingBack) await recordImages(repo, id);
        liveLog(deps, repo.key, id, 'verifying')?.([r.summary]);
        return { summary: r.summary };
      }),
      notify: fromPromise(async ({ input }) => {
        const { repo } = input;
        // The row's reason travels with the run (the message's "Why:" line).
        const reasonOf =
          input.notice.run?.deploymentId != null ? reasons.get(input.notice.run.deploymentId) : undefined;
        if (input.notice.run?.deploymentId != null) reasons.delete(input.notice.run.deploymentId);
        const notice =
          reasonOf && input.notice.run
            ? { ...input.notice, run: { ...input.notice.run, reason: reasonOf } }
            : input.notice;
        const results = await deps.notify(repo, notice);
        for (const r of results)
          deps.report({ type: 'notification', repoKey: repo.key, url: r.url, service: r.service, ok: r.ok, at: ts() });
        const id = notice.run?.deploymentId ?? null;
        if (id !== null && results.length > 0) {
          history.setDeploymentNotifications(id, results);
          for (const r of results)
            logTo(id, `notifying: ${r.service} ${r.url} ${r.ok ? 'ok' : `failed: ${r.error ?? ''}`}`);
        }
        return results;
      }),
    },
    actions: {
      openDeployment: ({ context: { repo }, self }, p) => {
        const id = openRow(repo, p);
        if (p.rollbackTo) rollbackTargets.set(id, p.rollbackTo);
        if (p.cause?.imageUpdate?.length) imagePulls.set(id, [...new Set(p.cause.imageUpdate.map((c) => c.service))]);
        if (p.supersedes !== null) {
          reasons.delete(p.supersedes);
          imagePulls.delete(p.supersedes);
          rollbackTargets.delete(p.supersedes);
          history.finishDeployment(p.supersedes, {
            status: 'interrupted',
            error: `interrupted: replaced by deployment ${id} before it started`,
          });
          deps.report({
            type: 'deployment.finished',
            repoKey: repo.key,
            deploymentId: p.supersedes,
            status: 'interrupted',
            stage: null,
            commit: null,
            durationMs: null,
            at: ts(),
          });
        }
        self.send({
          type: 'deployment.opened',
          deploymentId: id,
          trigger: p.trigger,
          commit: p.commit,
          triggeredBy: p.triggeredBy ?? null,
          cause: p.cause ?? null,
        });
      },
      interruptRuns: ({ context: { repo } }, { deploymentIds }) => {
        for (const id of deploymentIds) {
          reasons.delete(id);
          imagePulls.delete(id);
          rollbackTargets.delete(id);
          history.finishDeployment(id, {
            status: 'interrupted',
            error: 'interrupted: the repository was removed from the configuration',
          });
          logOf(repo).warn({ deploymentId: id }, 'repository removed during a deploy; deployment marked interrupted');
        }
      },
      runStarted: ({ context: { repo } }, { run }) => {
        const id = run.deploymentId;
        if (id === null) return;
        history.updateDeployment(id, { status: 'running', stage: 'pulling' });
        logTo(
          id,
          `deploy ${short(run.commit)} (trigger ${run.trigger}${run.triggeredBy ? ` by ${run.triggeredBy}` : ''}${run.forced ? ', forced' : ''}) of ${repo.key} branch ${repo.branch}`,
        );
        const reason = reasons.get(id) ?? null;
        if (reason) logTo(id, `why: ${reason.summary}`);
        deps.report({
          type: 'deployment.started',
          repoKey: repo.key,
          deploymentId: id,
          commit: run.commit,
          trigger: run.trigger,
          at: ts(),
          reason,
          triggeredBy: run.triggeredBy ?? null,
        });
      },
      recordCheck: (_, p) => {
        history.updateRepositoryState(_.context.repo.key, {
          lastCheckedAt: ts(),
          ...(p.commit ? { lastSeenCommit: p.commit } : {}),
        });
        deps.report({
          type: 'check',
          repoKey: _.context.repo.key,
          result: p.result === 'pinned' ? 'unchanged' : p.result,
          at: ts(),
        });
        if (p.error)
          logOf(_.context.repo).warn(
            { code: p.error.code, transient: p.error.transient },
            `check failed: ${p.error.message}`,
          );
      },
      finishRun: ({ context }, p) => {
        const run: Run = p.run;
        // Forced runs have their row from the request, the others from openRun: no id means opening it failed.
        const id = run.deploymentId ?? openRow(context.repo, run);
        rollbackTargets.delete(id);
        imagePulls.delete(id);
        const status: FinalDeploymentStatus = run.outcome ?? 'failed';
        const error = describeError(run.error, run.rollbackError);
        history.finishDeployment(id, {
          status,
          stage: run.error?.stage ?? (status === 'skipped' ? 'decrypting' : 'verifying'),
          error,
          rolledBackTo: status === 'rolled_back' ? run.previousCommit : null,
          commit: run.commit,
        });
        history.updateRepositoryState(context.repo.key, { pinnedCommit: p.pinnedCommit });
        // An automatic rollback runs inside the failed deployment's row: the row keeps the reason it started with,
        // and rolledBackTo and this line say the rest.
        if (status === 'rolled_back')
          logTo(
            id,
            `rollback: automatic rollback to ${short(run.previousCommit)} after the ${run.error?.stage ?? ''} failure`,
          );
        logTo(id, `result: ${status}${error ? ` — ${error}` : ''}`);
        const durationMs = Date.now() - run.startedAt;
        const line = {
          deploymentId: id,
          commit: short(run.commit),
          status,
          trigger: run.trigger,
          triggeredBy: run.triggeredBy ?? null,
          durationMs,
        };
        const log = logOf(context.repo);
        if (status === 'success') log.info(line, 'deploy succeeded');
        else if (status === 'skipped') log.info(line, 'deploy skipped: the plan found nothing to change');
        else
          log.error(
            { ...line, stage: run.error?.stage, code: run.error?.code },
            `deploy ${status}: ${run.error?.message ?? ''}`,
          );
        deps.report({
          type: 'deployment.finished',
          repoKey: context.repo.key,
          deploymentId: id,
          status,
          stage: run.error?.stage ?? null,
          commit: run.commit,
          durationMs,
          at: ts(),
        });
      },
      cleanupDecrypted: ({ context }, p) => {
        const id = p.deploymentId;
        // The identities written by this run; those recorded in the store too (newest first) if this actor restarted.
        const mine = new Map(written.get(context.repo.key));
        written.delete(context.repo.key);
        envFiles.delete(context.repo.key);
        const log = logOf(context.repo);
        if (p.files.length > 0)
          for (const f of history.ownedPlaintext(context.repo.key)) if (!mine.has(f.path)) mine.set(f.path, f);
        const handled = () => {
          if (id === null) return;
          try {
            history.markPlaintextHandled(id);
          } catch (err) {
            log.warn({ err, deploymentId: id }, 'could not record that decrypted files were removed');
          }
        };
        // keep_decrypted: the files stay on purpose (and remain Shiparr's to overwrite next time).
        if (p.files.length === 0) return handled();
        // Only files still exactly as written are removed; a path someone replaced since is left alone.
        const work = p.files.map(async (file) => {
          const f = mine.get(file);
          if (!f) return true;
          try {
            const outcome = await removePlaintext(f);
            if (outcome === 'changed')
              log.warn({ file, deploymentId: id }, 'decrypted file changed since it was written; left in place');
            return true;
          } catch (err) {
            log.warn({ err, file }, 'could not remove decrypted file');
            return false;
          }
        });
        void Promise.all(work).then((done) => {
          if (done.every(Boolean)) handled();
        });
      },
      persistSuspended: ({ context }, p) => history.updateRepositoryState(context.repo.key, { suspended: p.suspended }),
      persistPin: ({ context }, p) => history.updateRepositoryState(context.repo.key, { pinnedCommit: p.pinnedCommit }),
      warn: ({ context }, p) => {
        if (p.message) logOf(context.repo).warn(p.message);
      },
    },
  });
}

function describeError(err: StepError | null, rollbackErr: StepError | null): string | null {
  if (!err) return null;
  const main = `${err.stage}: ${err.code}: ${err.message}`;
  return rollbackErr ? `${main}; rollback failed: ${rollbackErr.code}: ${rollbackErr.message}` : main;
}
