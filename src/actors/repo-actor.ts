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
  DeployStage,
  DeploymentPatch,
  FinalDeploymentStatus,
  FinishDeploymentInput,
  NotifyOutcome,
  PlaintextFile,
  RepoActivity,
  ServicePlan,
  VerifyResult,
} from '../domain/types.ts';
import { TaskError } from '../errors.ts';
import { deployMachine, type Notice } from '../machines/deploy-machine.ts';
import type { Run, SlotIn, StepError } from '../machines/types.ts';
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
   * Plans before applying (skips deploys that change nothing) and labels every service with Shiparr's content hashes
   * through a generated override file. `hmacKey`: the per-install key (hex) for environment values; `generatedDir`:
   * `<data dir>/generated`. Without it, runs apply without a plan and without the override.
   */
  plan?: { hmacKey: string; generatedDir: string };
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

/** Provides the deploy machine with real effects for one repository. */
export function createRepoLogic(deps: RepoDeps) {
  const { runTask, history } = deps;
  // Plaintext files of each repository's last decrypt: compose-up reads their values to mask them in its output.
  const decryptedFiles = new Map<string, string[]>();
  // Per run: the identities of the plaintext files written (to remove only those), the env file for `--env-file`.
  const written = new Map<string, PlaintextFile>();
  let envFile: string | undefined;
  const logTo = (id: number | null, line: string) => {
    if (id !== null) history.appendDeploymentLog(id, `[${ts()}] ${line}\n`);
  };
  // A deployment row is opened here only: for an accepted deploy request, or when a check starts a run.
  const openRow = (repo: RepoConfig, run: Pick<Run, 'trigger' | 'commit' | 'previousCommit' | 'triggeredBy'>) =>
    history.createDeployment({
      repoKey: repo.key,
      trigger: run.trigger,
      triggeredBy: run.triggeredBy ?? null,
      status: 'pending',
      commit: run.commit,
      previousCommit: run.previousCommit,
      configHash: repo.configHash,
    }).id;
  // What the plan task reads: the live checkout as compose will see it (the env file of this run's decrypt).
  const planInput = (repo: RepoConfig, hmacKey: string) => ({
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
  });
  const failWith = (
    stage: DeployStage,
    id: number | null,
    r: { code: string; message: string; transient: boolean; output?: string },
  ) => {
    logTo(id, `${stage}: FAILED ${r.code}: ${r.message}${r.output ? `\n${r.output.trimEnd()}` : ''}`);
    const err = new TaskError(stage, r.code, r.message, { transient: r.transient });
    return Object.assign(err, { output: r.output });
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
        envFile = undefined;
        const r = await runTask(
          'git-sync',
          {
            url: repo.url,
            branch: repo.branch,
            commit: input.commit ?? undefined,
            dir: repo.localPath,
            shallow: repo.shallow,
            token: repo.token,
            timeoutMs: repo.timeouts.git * 1000,
          },
          signal,
        );
        if (!r.ok) throw failWith('pulling', id, r);
        const how = r.gitDirReplaced ? ' (.git re-cloned, other files kept)' : r.cloned ? ' (fresh clone)' : '';
        logTo(id, `pulling: checked out ${short(r.commit)}${how} in ${r.durationMs} ms`);
        if (id !== null) history.updateDeployment(id, { commit: r.commit });
        return { commit: r.commit };
      }),
      decrypt: fromPromise(async ({ input, signal }) => {
        const { repo, deploymentId: id } = input;
        if (id !== null) history.updateDeployment(id, { stage: 'decrypting' });
        envFile = undefined;
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
        // Recorded before compose runs: a crash from here on leaves the boot sweep the exact files to remove.
        for (const f of r.files ?? []) written.set(f.path, f);
        if (id !== null && r.files) history.recordPlaintext(id, r.files);
        envFile = r.envFile;
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
                  pull: repo.pull,
                  build: repo.build,
                  removeOrphans: repo.removeOrphans,
                  // The labels step above spends from the same budget: `timeouts.apply` bounds the whole step.
                  timeoutMs: Math.max(1_000, repo.timeouts.apply * 1000 - (Date.now() - applyStarted)),
                  secretFiles: repo.decrypt.length ? (decryptedFiles.get(repo.key) ?? []) : [],
                  ...(envFile !== undefined ? { envFile } : {}),
                  ...(overrideFiles.length ? { overrideFiles } : {}),
                },
                signal,
              );
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
        return { summary: r.summary };
      }),
      notify: fromPromise(async ({ input }) => {
        const { repo, notice } = input;
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
        if (p.supersedes !== null) {
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
        });
      },
      interruptRuns: (_, { deploymentIds }) => {
        for (const id of deploymentIds) {
          history.finishDeployment(id, {
            status: 'interrupted',
            error: 'interrupted: the repository was removed from the configuration',
          });
          deps.log.warn({ deploymentId: id }, 'repository removed during a deploy; deployment marked interrupted');
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
        deps.report({
          type: 'deployment.started',
          repoKey: repo.key,
          deploymentId: id,
          commit: run.commit,
          trigger: run.trigger,
          at: ts(),
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
          deps.log.warn({ code: p.error.code, transient: p.error.transient }, `check failed: ${p.error.message}`);
      },
      finishRun: ({ context }, p) => {
        const run: Run = p.run;
        // Forced runs have their row from the request, the others from openRun: no id means opening it failed.
        const id = run.deploymentId ?? openRow(context.repo, run);
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
        if (status === 'success') deps.log.info(line, 'deploy succeeded');
        else if (status === 'skipped') deps.log.info(line, 'deploy skipped: the plan found nothing to change');
        else
          deps.log.error(
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
        const mine = new Map(written);
        written.clear();
        envFile = undefined;
        if (p.files.length > 0)
          for (const f of history.ownedPlaintext(context.repo.key)) if (!mine.has(f.path)) mine.set(f.path, f);
        const handled = () => {
          if (id === null) return;
          try {
            history.markPlaintextHandled(id);
          } catch (err) {
            deps.log.warn({ err, deploymentId: id }, 'could not record that decrypted files were removed');
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
              deps.log.warn({ file, deploymentId: id }, 'decrypted file changed since it was written; left in place');
            return true;
          } catch (err) {
            deps.log.warn({ err, file }, 'could not remove decrypted file');
            return false;
          }
        });
        void Promise.all(work).then((done) => {
          if (done.every(Boolean)) handled();
        });
      },
      persistSuspended: ({ context }, p) => history.updateRepositoryState(context.repo.key, { suspended: p.suspended }),
      persistPin: ({ context }, p) => history.updateRepositoryState(context.repo.key, { pinnedCommit: p.pinnedCommit }),
      warn: (_, p) => {
        if (p.message) deps.log.warn(p.message);
      },
    },
  });
}

function describeError(err: StepError | null, rollbackErr: StepError | null): string | null {
  if (!err) return null;
  const main = `${err.stage}: ${err.code}: ${err.message}`;
  return rollbackErr ? `${main}; rollback failed: ${rollbackErr.code}: ${rollbackErr.message}` : main;
}
