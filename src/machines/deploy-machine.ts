/**
 * @module Deploy statechart for one repository. Pure: every effect is a named actor or action that
 * src/actors/repo-actor.ts provides; timeouts and the poll interval are named delays.
 *
 *   boot ─▶ idle ──poll/webhook/config──▶ checking ──changed──▶ pulling ─▶ decrypting ─▶ applying ─▶ verifying
 *            ▲  ▲                            │ unchanged                                     │ fail       │ fail
 *            │  └────────────────────────────┘                                               ▼            ▼
 *            └──────────── notifying ◀── (finishing: record outcome) ◀────────────── rollingBack (sync→decrypt→apply→verify)
 *   suspended: no polls, no deploys until repo.resume.
 *   planning (between decrypting and applying): nothing to change and not forced → finishing (skipped), no notice.
 *
 * Time: XState's `Clock` has only setTimeout/clearTimeout, and the system's clock is internal (`system._clock`),
 * so the chart cannot ask the actor's clock what time it is. Whoever creates the actor passes that clock's time
 * as `input.now` (tests: `() => clock.now()` of the SimulatedClock given to createActor). Without it the chart
 * runs on wall time, which is the time of XState's default clock. No other time source is read here.
 */
import { assign, emit, fromCallback, fromPromise, setup, spawnChild, stopChild } from 'xstate';
import type {
  ApplyIn,
  ApplyOut,
  CheckIn,
  CheckOut,
  DecryptIn,
  DecryptOut,
  DeployEmitted,
  DeployEvent,
  DeployInput,
  DeployTrigger,
  NotifyIn,
  NotifyOut,
  OpenDeploymentParams,
  OpenRunIn,
  OpenRunOut,
  PlanIn,
  PlanOut,
  PullIn,
  PullOut,
  Run,
  SlotIn,
  Stage,
  StepError,
  VerifyIn,
  VerifyOut,
} from './types.ts';
import {
  activeRun,
  canRollback,
  checkFailed,
  conclude,
  decideDeploy,
  newRun,
  pollDelayMs,
  present,
  timeoutError,
  toStepError,
  type Notice,
  type RunContext,
} from './deploy-rules.ts';
import { changedConfigKeys, type RunCause } from './reasons.ts';

export type { Notice } from './deploy-rules.ts';

type Context = RunContext & {
  checkTrigger: DeployTrigger;
  /** Who asked for the check in progress (audit trail of the run it may start); null for polls. */
  checkBy: string | null;
  /** Why the check in progress was asked for, beyond its trigger (the cause of the run it may start). */
  checkCause: RunCause | null;
  jitter: number;
  bootDelayMs: number;
  /** The actor clock's time in ms (see the module comment). */
  now: () => number;
};

const notProvided = <O, I>(name: string) =>
  fromPromise<O, I>(async () => {
    throw new Error(`deploy machine: actor "${name}" not provided`);
  });

/** A deploy request (queued as the follow-up) as a forced run. */
const forcedRun = (ctx: Context): Run => {
  const followUp = present(ctx.followUp, 'follow-up');
  return {
    ...newRun(ctx, ctx.now(), { ...followUp, forced: true }),
    triggeredBy: followUp.triggeredBy ?? null,
    cause: followUp.cause ?? null,
  };
};

const STAGE_TIMEOUT_MARGIN_MS = 10_000;

const deploySetup = setup({
  types: {} as {
    context: Context;
    events: DeployEvent;
    emitted: DeployEmitted;
    input: DeployInput & { jitter?: number; now?: () => number };
  },
  actors: {
    /**
     * Holds one of the global deploy slots for a run: sends `slot.acquired` once it has one, and releases it when it
     * stops (the run finished, or this actor ended). Default: unlimited slots.
     */
    deploySlot: fromCallback<{ type: 'slot.acquired' }, SlotIn>(({ sendBack }) => {
      sendBack({ type: 'slot.acquired' });
    }),
    check: notProvided<CheckOut, CheckIn>('check'),
    openRun: notProvided<OpenRunOut, OpenRunIn>('openRun'),
    pull: notProvided<PullOut, PullIn>('pull'),
    decrypt: notProvided<DecryptOut, DecryptIn>('decrypt'),
    apply: notProvided<ApplyOut, ApplyIn>('apply'),
    verify: notProvided<VerifyOut, VerifyIn>('verify'),
    /** What applying would change. Default: no plan (nothing known, so the run applies). */
    plan: fromPromise<PlanOut, PlanIn>(async () => ({ noop: false, services: [] })),
    /** The run, if any, travels as notice.run. */
    notify: notProvided<NotifyOut, Pick<NotifyIn, 'repo'> & { notice: Notice }>('notify'),
  },
  actions: {
    /** Record an accepted deploy request; answers with `deployment.opened` (sent to the actor itself). */
    openDeployment: (_, _p: OpenDeploymentParams) => {},
    /** The run holds a deploy slot and starts pulling: record it as running and report it. */
    runStarted: (_, _p: { run: Run }) => {},
    /** Close the open rows of a run and of a queued deploy as interrupted: the repository was removed. */
    interruptRuns: (_, _p: { deploymentIds: number[] }) => {},
    /** A check finished (any result). */
    recordCheck: (
      _,
      _p: { commit: string | null; result: 'changed' | 'unchanged' | 'pinned' | 'error'; error: StepError | null },
    ) => {},
    /** The run ended: persist status, stage, error, pin, last good commit. */
    finishRun: (_, _p: { run: Run; pinnedCommit: string | null }) => {},
    /** Remove plaintext written by decrypting (unless keep_decrypted); `deploymentId` is the row that recorded it. */
    cleanupDecrypted: (_, _p: { files: string[]; deploymentId: number | null }) => {},
    /** Persist the suspended flag. */
    persistSuspended: (_, _p: { suspended: boolean }) => {},
    /** Persist the pinned (bad) commit; null clears it. */
    persistPin: (_, _p: { pinnedCommit: string | null }) => {},
    /** Log a warning about a configuration choice (e.g. a very short poll interval). */
    warn: (_, _p: { message: string }) => {},
    /** The one error action: a failure of the run, or of its rollback (stage `rollingBack`), goes on the run. */
    fail: assign(({ context }, error: StepError) => ({
      run: { ...activeRun(context), ...(error.stage === 'rollingBack' ? { rollbackError: error } : { error }) },
    })),
  },
  guards: {
    isSuspended: ({ context }) => context.suspended,
    suspendRequested: ({ context }) => context.suspendRequested,
    hasPendingConfig: ({ context }) => context.pendingConfig !== null,
    followUpDeployWithCommit: ({ context }) => context.followUp?.kind === 'deploy' && context.followUp.commit !== null,
    hasFollowUp: ({ context }) => context.followUp !== null,
    hasRun: ({ context }) => context.run !== null,
    noSecrets: ({ context }) => context.repo.decrypt.length === 0,
  },
  delays: {
    pollDelay: ({ context }) => pollDelayMs(context, context.jitter),
    checkTimeout: ({ context }) => context.repo.timeouts.git * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    pullTimeout: ({ context }) => context.repo.timeouts.git * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    decryptTimeout: ({ context }) => context.repo.timeouts.decrypt * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    applyTimeout: ({ context }) => context.repo.timeouts.apply * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    verifyTimeout: ({ context: { repo } }) =>
      (repo.healthcheck.timeout +
        (repo.healthcheck.url ? (repo.healthcheck.retries + 1) * repo.healthcheck.interval : 0)) *
        1000 +
      STAGE_TIMEOUT_MARGIN_MS,
    notifyTimeout: ({ context }) => (context.repo.timeouts.notify * 2 + 5) * 1000,
    /** A plan that takes longer is given up (the run applies): it reads, like `compose config` and the engine's list. */
    planTimeout: ({ context }) => context.repo.timeouts.apply * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    bootDelay: ({ context }) => context.bootDelayMs,
    /** Waiting for a free deploy slot (global concurrency limit) is bounded too. */
    openTimeout: ({ context }) => Math.max(3_600_000, context.repo.timeouts.apply * 1000 * 4),
  },
});

/**
 * The effect stages, run by the pipeline and, towards the previous good commit, by rollingBack: each names its
 * actor and its timeout delay (`place` puts the shared invoke and timeout transitions under those literal names).
 */
type Repo = Context['repo'];
type StageOut = PullOut | DecryptOut | ApplyOut | VerifyOut;
const STAGES = {
  pulling: {
    seconds: (r: Repo) => r.timeouts.git,
    place: <I, T>(i: I, t: T) => ({ invoke: { ...i, src: 'pull' as const }, after: { pullTimeout: t } }),
  },
  decrypting: {
    seconds: (r: Repo) => r.timeouts.decrypt,
    place: <I, T>(i: I, t: T) => ({ invoke: { ...i, src: 'decrypt' as const }, after: { decryptTimeout: t } }),
  },
  applying: {
    seconds: (r: Repo) => r.timeouts.apply,
    place: <I, T>(i: I, t: T) => ({ invoke: { ...i, src: 'apply' as const }, after: { applyTimeout: t } }),
  },
  verifying: {
    seconds: (r: Repo) => r.healthcheck.timeout,
    place: <I, T>(i: I, t: T) => ({ invoke: { ...i, src: 'verify' as const }, after: { verifyTimeout: t } }),
  },
} as const;

/**
 * One effect stage. In `deploy` mode it works on run.commit and a failure or timeout becomes the run's error;
 * applying and verifying roll back when they can (a timed-out apply or verify counts as not transient then: the
 * new commit may be half up). In `rollback` mode it works on run.previousCommit and a failure becomes the run's
 * rollbackError. Every failure is recorded by the `fail` action and ends in finishing (or rollingBack).
 */
function stage(step: keyof typeof STAGES, mode: 'deploy' | 'rollback', next: string) {
  const { place, seconds } = STAGES[step];
  const errorStage: Stage = mode === 'rollback' ? 'rollingBack' : step;
  const rollsBack = mode === 'deploy' && (step === 'applying' || step === 'verifying');
  const failTo = <E>(error: (a: { context: Context; event: E }) => StepError, timedOut: boolean) => {
    const permanent = (a: { context: Context; event: E }) => (timedOut ? { ...error(a), transient: false } : error(a));
    const toFinish = { target: '#deploy.finishing', actions: { type: 'fail' as const, params: error } };
    if (!rollsBack) return [toFinish];
    const toRollback = { target: '#deploy.rollingBack', actions: { type: 'fail' as const, params: permanent } };
    return [
      { ...toRollback, guard: (a: { context: Context; event: E }) => canRollback(a.context, permanent(a)) },
      toFinish,
    ];
  };
  return deploySetup.createStateConfig({
    ...(step === 'decrypting' ? { always: { guard: 'noSecrets' as const, target: next } } : {}),
    ...place(
      {
        input: ({ context }: { context: Context }) => {
          const run = activeRun(context);
          return {
            repo: context.repo,
            deploymentId: run.deploymentId,
            commit: mode === 'rollback' ? run.previousCommit : run.commit,
            // The range of new commits is read after the deploy's own sync (not the rollback's).
            ...(mode === 'deploy' && step === 'pulling' ? { since: run.previousCommit } : {}),
            rollingBack: mode === 'rollback',
          };
        },
        onDone: {
          target: next,
          // The output of whichever stage this is: pull reports the commit, decrypt the files it wrote.
          actions: assign(({ context, event }: { context: Context; event: { type: string; output: StageOut } }) => {
            const run = activeRun(context),
              out = event.output;
            if ('written' in out) return { run: { ...run, decrypted: [...run.decrypted, ...out.written] } };
            return mode === 'deploy' && 'commit' in out ? { run: { ...run, commit: out.commit } } : {};
          }),
        },
        onError: failTo(({ event }: { event: { error: unknown } }) => toStepError(errorStage, event.error), false),
      },
      failTo(({ context }) => timeoutError(errorStage, seconds(context.repo)), true),
    ),
  });
}

/** recordCheck's params for a check that answered, and for one that failed. */
const checkAnswer = ({ context, event: { output } }: { context: Context; event: { output: CheckOut } }) => {
  const decision = decideDeploy(context, output.commit);
  return { commit: output.commit, result: decision === 'deploy' ? ('changed' as const) : decision, error: null };
};
const checkError = ({ event }: { event: { error: unknown } }) => toStepError('checking', event.error);
const checkTimeout = ({ context }: { context: Context }) => timeoutError('checking', context.repo.timeouts.git);
const checkErrorRecord = (a: { event: { error: unknown } }) => ({
  commit: null,
  result: 'error' as const,
  error: checkError(a),
});
const headSeen = (context: Context, head: string) => ({ remoteHead: head, lastCheckAt: context.now() });

export const deployMachine = deploySetup.createMachine({
  id: 'deploy',
  context: ({
    input: { repo, lastDeployedCommit, lastConfigHash, pinnedCommit, suspended, checkOnStart, ...rest },
  }) => ({
    ...{ repo, lastDeployedCommit, lastConfigHash, pinnedCommit, suspended },
    remoteHead: null,
    lastCheckAt: null,
    nextCheckAt: null,
    lastError: null,
    attempt: 0,
    run: null,
    notice: null,
    rolledBack: false,
    followUp: null,
    suspendRequested: false,
    pendingConfig: null,
    checkTrigger: checkOnStart ? 'boot' : 'poll',
    checkBy: null,
    checkCause:
      checkOnStart && rest.interruptedDeploymentId != null
        ? { interruptedDeploymentId: rest.interruptedDeploymentId }
        : null,
    jitter: rest.jitter ?? 0.5,
    bootDelayMs: Math.max(0, rest.bootDelayMs ?? 0),
    now: rest.now ?? Date.now,
  }),
  initial: 'boot',
  // Requests are queued here and taken up by idle's eventless transitions: at once when idle, after the
  // deploy when busy (at most one follow-up; a suspend or config change waits for idle).
  on: {
    'repo.check': {
      actions: assign({
        followUp: ({ context, event }) =>
          context.followUp ?? {
            kind: 'check',
            trigger: event.trigger ?? 'webhook',
            deploymentId: null,
            commit: null,
            triggeredBy: event.triggeredBy ?? null,
            cause: event.webhook ? { webhook: event.webhook } : null,
          },
      }),
    },
    // A deploy request without a commit joins a deploy already queued (one answer, one row); any other opens a row of
    // its own (openDeployment answers with deployment.opened), replacing a queued deploy that never ran.
    'repo.deploy': [
      {
        guard: ({ context: { followUp }, event }) =>
          followUp?.kind === 'deploy' && followUp.deploymentId !== null && !event.commit,
        actions: emit(({ context }) => ({
          type: 'deploy.accepted' as const,
          deploymentId: present(context.followUp?.deploymentId ?? null, 'queued deployment'),
        })),
      },
      {
        actions: {
          type: 'openDeployment',
          params: ({ context: { followUp, lastDeployedCommit }, event }) => ({
            trigger: event.trigger ?? 'api',
            commit: event.commit ?? null,
            previousCommit: lastDeployedCommit,
            supersedes: followUp?.kind === 'deploy' ? followUp.deploymentId : null,
            triggeredBy: event.triggeredBy ?? null,
            cause:
              event.rollbackTo != null
                ? { rollbackOf: event.rollbackTo }
                : event.imageUpdate
                  ? { imageUpdate: event.imageUpdate }
                  : null,
            rollbackTo: event.rollbackTo ?? null,
          }),
        },
      },
    ],
    'deployment.opened': {
      actions: [
        assign({
          followUp: ({ event }) => ({
            kind: 'deploy' as const,
            trigger: event.trigger,
            deploymentId: event.deploymentId,
            commit: event.commit,
            triggeredBy: event.triggeredBy ?? null,
            cause: event.cause ?? null,
          }),
        }),
        emit(({ event }) => ({ type: 'deploy.accepted' as const, deploymentId: event.deploymentId })),
      ],
    },
    // Persisted when asked for, taking effect at the next idle.
    'repo.suspend': {
      actions: [assign({ suspendRequested: true }), { type: 'persistSuspended', params: { suspended: true } }],
    },
    'repo.resume': {
      actions: [assign({ suspendRequested: false }), { type: 'persistSuspended', params: { suspended: false } }],
    },
    'config.updated': { actions: assign({ pendingConfig: ({ event }) => event.repo }) },
    'repo.unpin': {
      actions: [assign({ pinnedCommit: null }), { type: 'persistPin', params: { pinnedCommit: null } }],
    },
    // Stopped right after this: a run not yet concluded and a deploy still queued will never finish.
    'repo.removed': {
      actions: {
        type: 'interruptRuns',
        params: ({ context: { run, followUp } }) => ({
          deploymentIds: [
            run && run.outcome === null ? run.deploymentId : null,
            followUp?.kind === 'deploy' ? followUp.deploymentId : null,
          ].filter((id): id is number => id !== null),
        }),
      },
    },
  },
  states: {
    boot: {
      description: 'Restored from the store; decide whether to start suspended, check at once, or wait one interval.',
      entry: {
        type: 'warn',
        params: ({ context: { repo } }) => ({
          message:
            repo.checkInterval < 10
              ? `check_interval ${repo.checkInterval}s is below 10s: the remote will be polled very often`
              : '',
        }),
      },
      always: [
        {
          guard: 'isSuspended',
          target: 'suspended',
          actions: { type: 'persistSuspended', params: { suspended: true } },
        },
        { guard: ({ context }) => context.checkTrigger === 'boot' && context.bootDelayMs === 0, target: 'checking' },
        { guard: ({ context }) => context.checkTrigger !== 'boot', target: 'idle' },
      ],
      after: { bootDelay: { target: 'checking' } },
    },
    idle: {
      description: 'Waiting for the poll interval (or backoff), a webhook, a forced deploy or a config change.',
      entry: assign({
        nextCheckAt: ({ context }) => context.now() + pollDelayMs(context, context.jitter),
        run: null,
        notice: null,
        rolledBack: false,
      }),
      exit: assign({ nextCheckAt: null }),
      always: [
        { guard: 'suspendRequested', target: 'suspended' },
        {
          guard: 'hasPendingConfig',
          target: 'checking',
          actions: [
            assign({
              repo: ({ context }) => present(context.pendingConfig, 'config'),
              pendingConfig: null,
              pinnedCommit: null,
              checkTrigger: 'config',
              checkBy: null,
              checkCause: ({ context }) => ({
                configKeys: changedConfigKeys(context.repo, present(context.pendingConfig, 'config')),
              }),
            }),
            { type: 'persistPin', params: { pinnedCommit: null } },
          ],
        },
        {
          guard: 'followUpDeployWithCommit',
          target: 'pulling',
          actions: assign({ run: ({ context }) => forcedRun(context), followUp: null }),
        },
        {
          guard: 'hasFollowUp',
          target: 'checking',
          actions: assign(({ context }) => {
            const followUp = present(context.followUp, 'follow-up');
            return {
              run: followUp.kind === 'deploy' ? forcedRun(context) : null,
              checkTrigger: followUp.trigger,
              checkBy: followUp.triggeredBy ?? null,
              checkCause: followUp.cause ?? null,
              followUp: null,
            };
          }),
        },
      ],
      after: {
        pollDelay: {
          target: 'checking',
          actions: assign({
            checkTrigger: ({ context }) => (context.attempt > 0 ? 'retry' : 'poll'),
            checkBy: null,
            checkCause: ({ context }) => (context.attempt > 0 ? { attempt: context.attempt } : null),
          }),
        },
      },
    },
    checking: {
      description:
        'Ask the remote for the branch head (one ref advertisement, no objects) and compare with the last good deploy.',
      invoke: {
        src: 'check',
        input: ({ context }) => ({ repo: context.repo }),
        onDone: [
          {
            guard: ({ context, event }) => decideDeploy(context, event.output.commit) === 'deploy',
            target: 'pulling',
            actions: [
              { type: 'recordCheck', params: checkAnswer },
              assign(({ context, event: { output } }) => ({
                ...headSeen(context, output.commit),
                run: context.run
                  ? { ...context.run, commit: context.run.commit ?? output.commit }
                  : {
                      ...newRun(context, context.now(), {
                        trigger: context.checkTrigger,
                        forced: false,
                        commit: output.commit,
                      }),
                      triggeredBy: context.checkBy,
                      cause: context.checkCause,
                    },
              })),
            ],
          },
          {
            guard: ({ context }) => context.lastError?.stage === 'checking',
            target: 'notifying',
            actions: [
              { type: 'recordCheck', params: checkAnswer },
              assign(({ context, event }) => ({
                ...headSeen(context, event.output.commit),
                attempt: 0,
                lastError: null,
                notice: { kind: 'check_recovered', run: null, error: null, commit: context.lastDeployedCommit },
              })),
            ],
          },
          {
            target: 'idle',
            actions: [
              { type: 'recordCheck', params: checkAnswer },
              assign(({ context, event }) => ({ ...headSeen(context, event.output.commit), attempt: 0 })),
            ],
          },
        ],
        // With a run (a forced deploy) a failed check fails the run; without one it backs off and is reported.
        onError: [
          {
            guard: 'hasRun',
            target: 'finishing',
            actions: [
              { type: 'recordCheck', params: checkErrorRecord },
              { type: 'fail', params: checkError },
              assign({ lastCheckAt: ({ context }) => context.now() }),
            ],
          },
          {
            target: 'notifying',
            actions: [
              { type: 'recordCheck', params: checkErrorRecord },
              assign((a) => ({ lastCheckAt: a.context.now(), ...checkFailed(a.context, checkError(a)) })),
            ],
          },
        ],
      },
      after: {
        checkTimeout: [
          { guard: 'hasRun', target: 'finishing', actions: { type: 'fail', params: checkTimeout } },
          { target: 'notifying', actions: assign(({ context }) => checkFailed(context, checkTimeout({ context }))) },
        ],
      },
    },
    pulling: {
      description:
        'Record the deployment, take a deploy slot (held until finishing, or until the actor ends), then force the checkout to exactly the target commit.',
      initial: 'opening',
      states: {
        opening: {
          invoke: {
            src: 'openRun',
            input: ({ context }) => ({ repo: context.repo, run: activeRun(context) }),
            onDone: {
              target: 'waiting',
              actions: [
                assign({
                  run: ({ context, event }) => ({ ...activeRun(context), deploymentId: event.output.deploymentId }),
                }),
                spawnChild('deploySlot', {
                  id: 'slot',
                  input: ({ context, self }) => ({
                    key: context.repo.key,
                    deploymentId: present(activeRun(context).deploymentId, 'deployment'),
                    owner: self,
                  }),
                }),
              ],
            },
            onError: {
              target: '#deploy.finishing',
              actions: { type: 'fail', params: ({ event }) => toStepError('pulling', event.error) },
            },
          },
        },
        waiting: {
          on: {
            'slot.acquired': {
              target: 'syncing',
              actions: [
                assign({ run: ({ context }) => ({ ...activeRun(context), startedAt: context.now() }) }),
                { type: 'runStarted', params: ({ context }) => ({ run: activeRun(context) }) },
              ],
            },
          },
          after: {
            openTimeout: {
              target: '#deploy.finishing',
              actions: {
                type: 'fail',
                params: {
                  stage: 'pulling',
                  code: 'DEPLOY_SLOT_TIMEOUT',
                  message: 'no free deploy slot in time',
                  transient: true,
                },
              },
            },
          },
        },
        syncing: stage('pulling', 'deploy', '#deploy.decrypting'),
      },
    },
    decrypting: {
      description: 'Decrypt the SOPS files (env_file, decrypt[]) next to the compose file, mode 0600.',
      ...stage('decrypting', 'deploy', 'planning'),
    },
    planning: {
      description:
        'What applying would change, per service (recorded on the row). Nothing to change and not forced: finish as skipped without running compose. A plan that fails or times out does not stop the run: it applies.',
      invoke: {
        src: 'plan',
        input: ({ context }) => {
          const run = activeRun(context);
          return { repo: context.repo, deploymentId: run.deploymentId, commit: run.commit, forced: run.forced };
        },
        onDone: [
          {
            guard: ({ context, event }) => event.output.noop && !activeRun(context).forced,
            target: 'finishing',
            actions: assign({ run: ({ context }) => ({ ...activeRun(context), skipped: true }) }),
          },
          { target: 'applying' },
        ],
        onError: { target: 'applying' },
      },
      after: { planTimeout: { target: 'applying' } },
    },
    applying: {
      description:
        'docker compose up -d on the checkout; a failure rolls back to the last good commit when there is one.',
      ...stage('applying', 'deploy', 'verifying'),
    },
    verifying: {
      description:
        'All containers of the compose project running (healthy where a healthcheck exists), optional HTTP check.',
      ...stage('verifying', 'deploy', 'finishing'),
    },
    rollingBack: {
      description: 'Back to the previous good commit: sync, decrypt, apply, verify. The bad commit gets pinned.',
      initial: 'syncing',
      onDone: { target: 'finishing', actions: assign({ rolledBack: true }) },
      states: {
        syncing: stage('pulling', 'rollback', 'decrypting'),
        decrypting: stage('decrypting', 'rollback', 'applying'),
        applying: stage('applying', 'rollback', 'verifying'),
        verifying: stage('verifying', 'rollback', 'done'),
        done: { type: 'final' },
      },
    },
    finishing: {
      description: 'Transient: decide the outcome, persist it, remove plaintext secrets, then notify.',
      entry: [
        stopChild('slot'),
        assign(({ context }) => conclude(context)),
        {
          type: 'finishRun',
          params: ({ context }) => ({ run: activeRun(context), pinnedCommit: context.pinnedCommit }),
        },
        {
          type: 'cleanupDecrypted',
          params: ({ context }) => ({
            files: context.repo.keepDecrypted ? [] : activeRun(context).decrypted,
            deploymentId: activeRun(context).deploymentId,
          }),
        },
      ],
      always: [{ guard: ({ context }) => context.notice === null, target: 'idle' }, { target: 'notifying' }],
    },
    notifying: {
      description:
        'Send success/failure/rollback/recovery notifications. Never fails the deploy; bounded by a timeout.',
      invoke: {
        src: 'notify',
        input: ({ context }) => ({ repo: context.repo, notice: present(context.notice, 'notice') }),
        onDone: { target: 'idle' },
        onError: { target: 'idle' },
      },
      after: { notifyTimeout: { target: 'idle' } },
    },
    suspended: {
      description: 'No polling and no deploys until repo.resume; persisted across restarts.',
      entry: assign({ suspended: true, followUp: null, suspendRequested: false }),
      on: {
        'repo.resume': {
          target: 'checking',
          actions: [
            assign({ suspended: false, checkTrigger: 'api', checkBy: null, checkCause: null }),
            { type: 'persistSuspended', params: { suspended: false } },
          ],
        },
        'repo.check': {},
        'repo.deploy': { actions: emit({ type: 'deploy.rejected' as const, reason: 'suspended' as const }) },
        'repo.suspend': {},
        'config.updated': { actions: assign({ repo: ({ event }) => event.repo, pinnedCommit: null }) },
      },
    },
  },
});
