/**
 * @module The supervisor statechart: one deploy actor per configured repository, spawned as a child (id = the
 * repository key, systemId `repo:<key>`), config changes applied as a diff (config/diff.ts), crashed children
 * re-spawned with bounded backoff, and what happens reported out with `emit` (listen with `actor.on('*', …)`).
 * Pure: the children's logic and input, the time and the log lines come in as input and named actions.
 *
 *   config.apply ──▶ diff ──▶ removed: repo.removed, stopChild      (the child closes its open rows first)
 *                            added:   spawnChild                    (at boot: queued in `pending`, see below)
 *                            changed: config.updated                (the child takes it at its next idle)
 *   xstate.snapshot.<key> ──▶ state changed? ──▶ emit 'state'
 *   xstate.error.actor.<key> ──▶ under the bound? ──▶ raise repo.restart after base·2ⁿ ──▶ spawnChild
 *                                └─ no ──▶ failed (until the config changes or it is resumed) ──▶ emit 'state'
 *   boot.spawn ──▶ spawnChild for the next `count` pending repositories (with a spread first check): the owner
 *                  sends it in slices and yields to the event loop between them, so 1,000 repositories do not
 *                  block the process (timers, HTTP) while their actors are created
 *   supervisor.stopping ──▶ no more restarts (the owner then stops the actor, which stops every child)
 */
import { emit, enqueueActions, setup, type AnyActorLogic, type AnyMachineSnapshot } from 'xstate';
import type { RepoConfig } from '../config/schema.ts';
import type { ActivityEvent } from '../domain/types.ts';
import { diffRepos } from '../config/diff.ts';

/** What the supervisor keeps per configured repository (its child may be absent: restarting or failed). */
export interface RepoEntry {
  repo: RepoConfig;
  /** The repository's row id (for the events). */
  repoId: number;
  /** Top-level state of the child as last seen (`boot` before, `restarting` while waiting for a re-spawn). */
  state: string;
  /** When `state` last changed (ms, supervisor clock). */
  since: number;
  restarts: number;
  /** Crash times inside the restart window. */
  restartTimes: number[];
  /** Set after too many crashes: the child stays down until the config changes or it is resumed. */
  failed: string | null;
}

interface RestartPolicy {
  max: number;
  windowMs: number;
  baseDelayMs: number;
}

interface ConfigDiffKeys {
  added: string[];
  removed: string[];
  changed: string[];
}

/** How a child is made: its logic and its input (restored state, first check) for a repository. */
interface ChildFactory {
  logic(repo: RepoConfig): AnyActorLogic;
  input(repo: RepoConfig, start: { checkOnStart: boolean; bootSpreadMs: number }): unknown;
  repoId(key: string): number;
}

interface SupervisorInput {
  children: ChildFactory;
  restart: RestartPolicy;
  /** Check every repository as soon as its child starts at boot (later spawns always check at once). */
  checkOnStart: boolean;
  /** The actor clock's time in ms (see deploy-machine.ts on time). */
  now: () => number;
}

interface Context extends SupervisorInput {
  repos: Record<string, RepoEntry>;
  stopping: boolean;
  /** Keys of the last applied config diff (read back by whoever sent config.apply). */
  lastDiff: ConfigDiffKeys;
  /** Repositories of the boot config whose child is not spawned yet (in order; see `boot.spawn`). */
  pending: string[];
  /** How the pending children start (the boot spread is computed once, from the whole boot config). */
  pendingStart: { checkOnStart: boolean; bootSpreadMs: number };
}

type SupervisorEvent =
  | { type: 'config.apply'; repos: RepoConfig[]; boot: boolean; errors: number }
  | { type: 'repo.restart'; key: string }
  /** Spawn the next `count` children queued by a boot config.apply. */
  | { type: 'boot.spawn'; count: number }
  /** Start a failed repository again (resume). */
  | { type: 'repo.respawn'; key: string }
  /** Activity of a child, reported out unchanged. */
  | { type: 'activity'; event: ActivityEvent }
  | { type: 'supervisor.stopping' }
  | { type: `xstate.snapshot.${string}`; snapshot: AnyMachineSnapshot }
  | { type: `xstate.error.actor.${string}`; error: unknown };

const SNAPSHOT = 'xstate.snapshot.';
const ERROR = 'xstate.error.actor.';

/** The top-level state name of a deploy actor snapshot. */
export const topState = (s: AnyMachineSnapshot): string =>
  typeof s.value === 'string' ? s.value : (Object.keys(s.value)[0] ?? 'unknown');

/** The state the API shows: failed, restarting, backoff (idle after transient failures), or the child's state. */
export function displayState(
  entry: Pick<RepoEntry, 'failed' | 'state'>,
  child: AnyMachineSnapshot | undefined,
): string {
  if (entry.failed) return 'failed';
  if (!child || child.status !== 'active') return entry.state;
  const state = topState(child);
  if (state === 'idle' && (child.context as { attempt: number }).attempt > 0) return 'backoff';
  return state === 'boot' || state === 'finishing' ? 'checking' : state;
}

const iso = (ms: number) => new Date(ms).toISOString();
const newEntry = (ctx: Context, repo: RepoConfig): RepoEntry => ({
  repo,
  repoId: ctx.children.repoId(repo.key),
  state: 'boot',
  since: ctx.now(),
  restarts: 0,
  restartTimes: [],
  failed: null,
});

const supervisorSetup = setup({
  types: {} as { context: Context; events: SupervisorEvent; input: SupervisorInput; emitted: ActivityEvent },
  actions: {
    /** A child crashed (log line). */
    crashed: (_, _p: { key: string; error: unknown; restarts: number }) => {},
    /** A child crashed too often and stays down (log line). */
    gaveUp: (_, _p: { key: string; policy: RestartPolicy }) => {},
  },
});

/** Spawns (or re-spawns) the child of `key`; `bootSpreadMs` spreads the first checks of a boot. */
type Enqueue = Parameters<Parameters<typeof supervisorSetup.enqueueActions>[0]>[0]['enqueue'];
function spawn(
  enqueue: Enqueue,
  ctx: Context,
  repo: RepoConfig,
  start: { checkOnStart: boolean; bootSpreadMs: number },
) {
  // The children's logic is made per repository (not a named actor of this setup), hence the untyped spawn.
  const spawnChild = enqueue.spawnChild as (
    src: AnyActorLogic,
    o: { id: string; systemId: string; input: unknown; syncSnapshot: boolean },
  ) => void;
  spawnChild(ctx.children.logic(repo), {
    id: repo.key,
    systemId: `repo:${repo.key}`,
    input: ctx.children.input(repo, start),
    syncSnapshot: true,
  });
}

export const supervisorMachine = supervisorSetup.createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    ...input,
    repos: {},
    stopping: false,
    lastDiff: { added: [], removed: [], changed: [] },
    pending: [],
    pendingStart: { checkOnStart: true, bootSpreadMs: 0 },
  }),
  on: {
    'config.apply': {
      actions: enqueueActions(({ context, event, enqueue, self }) => {
        // A repository restarting or failed has no child to send to (sendTo an absent child would throw).
        const running = (key: string) => key in (self.getSnapshot().children as Record<string, unknown>);
        const prev = Object.values(context.repos).map((e) => e.repo);
        const diff = diffRepos(prev, event.repos);
        const repos = { ...context.repos };
        for (const { key } of diff.removed) {
          enqueue.cancel(`restart:${key}`);
          if (running(key)) {
            enqueue.sendTo(key, { type: 'repo.removed' });
            enqueue.stopChild(key);
          }
          delete repos[key];
        }
        // At boot, spread the first checks (25 ms per repository, at most 30 s) so 1,000 repositories do not hit
        // their remotes and the worker pool in the same instant.
        const start = event.boot
          ? { checkOnStart: context.checkOnStart, bootSpreadMs: Math.min(30_000, event.repos.length * 25) }
          : { checkOnStart: true, bootSpreadMs: 0 };
        // At boot the children are only queued: the owner spawns them in slices with `boot.spawn`.
        const pending = context.pending.filter((key) => key in repos);
        for (const repo of diff.added) {
          repos[repo.key] = newEntry(context, repo);
          if (event.boot) pending.push(repo.key);
          else spawn(enqueue, context, repo, start);
        }
        for (const repo of diff.changed) {
          const entry = repos[repo.key] as RepoEntry;
          if (entry.failed) {
            repos[repo.key] = { ...entry, repo, failed: null, restartTimes: [] };
            spawn(enqueue, context, repo, { checkOnStart: true, bootSpreadMs: 0 });
          } else {
            // A child mid-deploy takes it at its next idle; one waiting for a restart is spawned with it.
            repos[repo.key] = { ...entry, repo };
            if (running(repo.key)) enqueue.sendTo(repo.key, { type: 'config.updated', repo });
          }
        }
        const keys = (l: RepoConfig[]) => l.map((r) => r.key);
        enqueue.assign({
          repos,
          pending,
          ...(event.boot ? { pendingStart: start } : {}),
          lastDiff: { added: keys(diff.added), removed: keys(diff.removed), changed: keys(diff.changed) },
        });
        if (!event.boot) enqueue.emit({ type: 'config.reloaded', errors: event.errors, at: iso(context.now()) });
      }),
    },
    'xstate.snapshot.*': {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const key = event.type.slice(SNAPSHOT.length);
        const entry = context.repos[key];
        const snapshot = (event as { snapshot: AnyMachineSnapshot }).snapshot;
        if (!entry || entry.failed) return;
        const state = topState(snapshot);
        if (state === entry.state) return;
        const next = { ...entry, state, since: context.now() };
        // The entry is replaced inside the shared record instead of copying the record: a copy per child state change
        // costs O(repositories) (~0.6 ms at 1,000), i.e. O(n²) at boot and two copies per check afterwards. Nothing
        // keeps an older `repos` object to compare with; entries themselves are never mutated.
        enqueue.assign(({ context: c }) => {
          c.repos[key] = next;
          return { repos: c.repos };
        });
        enqueue.emit({
          type: 'state',
          repoKey: key,
          repoId: entry.repoId,
          state: displayState(next, snapshot),
          previous: entry.state,
          at: iso(next.since),
        });
      }),
    },
    'xstate.error.actor.*': {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const key = event.type.slice(ERROR.length);
        const entry = context.repos[key];
        if (!entry) return;
        // The crashed child stays in `children` until stopped: drop it so the key can be spawned again.
        enqueue.stopChild(key);
        const now = context.now();
        const policy = context.restart;
        const restartTimes = entry.restartTimes.filter((t) => now - t < policy.windowMs);
        enqueue({
          type: 'crashed',
          params: { key, error: (event as { error: unknown }).error, restarts: entry.restarts },
        });
        if (context.stopping) return;
        if (restartTimes.length >= policy.max) {
          const error = (event as { error: unknown }).error;
          const failed = {
            ...entry,
            restartTimes,
            failed: error instanceof Error ? error.message : String(error),
            state: 'failed',
            since: now,
          };
          enqueue.assign({ repos: { ...context.repos, [key]: failed } });
          enqueue({ type: 'gaveUp', params: { key, policy } });
          enqueue.emit({
            type: 'state',
            repoKey: key,
            repoId: entry.repoId,
            state: 'failed',
            previous: null,
            at: iso(now),
          });
          return;
        }
        const delay = policy.baseDelayMs * 2 ** restartTimes.length;
        const restarting = {
          ...entry,
          restartTimes: [...restartTimes, now],
          restarts: entry.restarts + 1,
          state: 'restarting',
        };
        enqueue.assign({ repos: { ...context.repos, [key]: restarting } });
        enqueue.raise({ type: 'repo.restart', key }, { delay, id: `restart:${key}` });
      }),
    },
    'boot.spawn': {
      actions: enqueueActions(({ context, event, enqueue, self }) => {
        if (context.stopping || context.pending.length === 0) return;
        const children = self.getSnapshot().children as Record<string, unknown>;
        const next = context.pending.slice(0, Math.max(1, event.count));
        for (const key of next) {
          const entry = context.repos[key];
          // Removed, failed or already started (a config change spawned it) since it was queued: nothing to do.
          if (!entry || entry.failed || key in children) continue;
          spawn(enqueue, context, entry.repo, context.pendingStart);
        }
        enqueue.assign({ pending: context.pending.slice(next.length) });
      }),
    },
    'repo.restart': {
      actions: enqueueActions(({ context, event, enqueue, self }) => {
        const entry = context.repos[event.key];
        if (
          !entry ||
          entry.failed ||
          context.stopping ||
          event.key in (self.getSnapshot().children as Record<string, unknown>)
        )
          return;
        spawn(enqueue, context, entry.repo, { checkOnStart: true, bootSpreadMs: 0 });
      }),
    },
    'repo.respawn': {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const entry = context.repos[event.key];
        if (!entry?.failed || context.stopping) return;
        enqueue.assign({ repos: { ...context.repos, [event.key]: { ...entry, failed: null, restartTimes: [] } } });
        spawn(enqueue, context, entry.repo, { checkOnStart: true, bootSpreadMs: 0 });
      }),
    },
    activity: { actions: emit(({ event }) => event.event) },
    'supervisor.stopping': {
      actions: enqueueActions(({ context, enqueue }) => {
        for (const key of Object.keys(context.repos)) enqueue.cancel(`restart:${key}`);
        enqueue.assign({ stopping: true, pending: [] });
      }),
    },
  },
});
