/**
 * @module Deploy statechart for one repository. Pure: every effect is a named actor or action that
 * src/actors/repo-actor.ts provides; timeouts and the poll interval are named delays.
 *
 *   boot ─▶ idle ──poll/webhook/config──▶ checking ──changed──▶ pulling ─▶ decrypting ─▶ applying ─▶ verifying
 *            ▲  ▲                            │ unchanged                                     │ fail       │ fail
 *            │  └────────────────────────────┘                                               ▼            ▼
 *            └──────────── notifying ◀── (finishing: record outcome) ◀────────────── rollingBack (sync→decrypt→apply→verify)
 *   suspended: no polls, no deploys until repo.resume.
 */
import { assign, fromPromise, setup } from 'xstate';
import type {
  ApplyIn, ApplyOut, CheckIn, CheckOut, DecryptIn, DecryptOut, DeployContext, DeployEvent, DeployInput, DeployTrigger,
  NotifyIn, NotifyOut, OpenRunIn, OpenRunOut, PullIn, PullOut, Run, Stage, StepError, VerifyIn, VerifyOut,
} from './types.ts';

const notProvided = <O, I>(name: string) =>
  fromPromise<O, I>(async () => {
    throw new Error(`deploy machine: actor "${name}" not provided`);
  });

/** Turns whatever an effect rejected with into a typed, secret-free StepError for the given stage. */
export function toStepError(stage: Stage, error: unknown): StepError {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; message?: unknown; transient?: unknown; output?: unknown; stage?: unknown };
    return {
      stage,
      code: typeof e.code === 'string' ? e.code : 'INTERNAL_ERROR',
      message: typeof e.message === 'string' ? e.message : String(error),
      transient: e.transient === true,
      ...(typeof e.output === 'string' && e.output ? { output: e.output } : {}),
    };
  }
  return { stage, code: 'INTERNAL_ERROR', message: String(error), transient: false };
}

const timeoutError = (stage: Stage, seconds: number): StepError => ({
  stage,
  code: 'STAGE_TIMEOUT',
  message: `${stage} did not finish within ${seconds} s`,
  transient: true,
});

/**
 * Milliseconds until the next check: the poll interval (with the repo's fixed jitter of ±10 %),
 * or exponential backoff after transient failures, capped at 4× the interval.
 */
export function pollDelayMs(ctx: Pick<DeployContext, 'repo' | 'attempt'>, jitter: number): number {
  const intervalMs = ctx.repo.checkInterval * 1000;
  const factor = 0.9 + 0.2 * Math.min(1, Math.max(0, jitter));
  if (ctx.attempt <= 0) return Math.round(intervalMs * factor);
  const base = Math.min(intervalMs, 5_000);
  const backoff = Math.min(base * 2 ** (ctx.attempt - 1), 4 * intervalMs);
  return Math.round(backoff * factor);
}

/** Which outcome a check leads to, given the remote head. Exported for tests and the API. */
export function decideDeploy(ctx: DeployContext, head: string): 'deploy' | 'unchanged' | 'pinned' {
  if (ctx.run?.forced) return 'deploy';
  if (ctx.pinnedCommit && head === ctx.pinnedCommit) return 'pinned';
  if (head !== ctx.lastDeployedCommit || ctx.repo.configHash !== ctx.lastConfigHash) return 'deploy';
  return 'unchanged';
}

function newRun(ctx: DeployContext, r: { trigger: DeployTrigger; forced: boolean; deploymentId?: number | null; commit?: string | null }): Run {
  return {
    deploymentId: r.deploymentId ?? null,
    trigger: r.trigger,
    forced: r.forced,
    commit: r.commit ?? null,
    previousCommit: ctx.lastDeployedCommit,
    startedAt: Date.now(),
    decrypted: [],
    error: null,
    rollbackError: null,
    outcome: null,
  };
}

const STAGE_TIMEOUT_MARGIN_MS = 10_000;

export const deployMachine = setup({
  types: {} as {
    context: DeployContext & { checkTrigger: DeployTrigger; jitter: number; bootDelayMs: number; notice: Notice | null; rolledBack: boolean };
    events: DeployEvent;
    input: DeployInput & { jitter?: number };
  },
  actors: {
    check: notProvided<CheckOut, CheckIn>('check'),
    openRun: notProvided<OpenRunOut, OpenRunIn>('openRun'),
    pull: notProvided<PullOut, PullIn>('pull'),
    decrypt: notProvided<DecryptOut, DecryptIn>('decrypt'),
    apply: notProvided<ApplyOut, ApplyIn>('apply'),
    verify: notProvided<VerifyOut, VerifyIn>('verify'),
    notify: notProvided<NotifyOut, NotifyIn & { notice: Notice }>('notify'),
  },
  actions: {
    /** A check finished (any result). */
    recordCheck: (_, _p: { commit: string | null; result: 'changed' | 'unchanged' | 'pinned' | 'error'; error: StepError | null }) => {},
    /** The run ended: persist status, stage, error, pin, last good commit. */
    finishRun: (_, _p: { run: Run; pinnedCommit: string | null }) => {},
    /** Remove plaintext written by decrypting (unless keep_decrypted). */
    cleanupDecrypted: (_, _p: { files: string[] }) => {},
    /** Persist the suspended flag. */
    persistSuspended: (_, _p: { suspended: boolean }) => {},
    /** Persist the pinned (bad) commit; null clears it. */
    persistPin: (_, _p: { pinnedCommit: string | null }) => {},
    /** Log a warning about a configuration choice (e.g. a very short poll interval). */
    warn: (_, _p: { message: string }) => {},
    setRollbackError: assign(({ context, event }) => ({
      run: withRollbackError(context.run, toStepError('rollingBack', (event as { error?: unknown }).error)),
    })),
  },
  guards: {
    isSuspended: ({ context }) => context.suspended,
    suspendRequested: ({ context }) => context.suspendRequested,
    hasPendingConfig: ({ context }) => context.pendingConfig !== null,
    followUpDeployWithCommit: ({ context }) => context.followUp?.kind === 'deploy' && context.followUp.commit !== null,
    followUpDeploy: ({ context }) => context.followUp?.kind === 'deploy',
    followUpCheck: ({ context }) => context.followUp?.kind === 'check',
    hasRun: ({ context }) => context.run !== null,
    noSecrets: ({ context }) => context.repo.decrypt.length === 0,
  },
  delays: {
    pollDelay: ({ context }) => pollDelayMs(context, context.jitter),
    checkTimeout: ({ context }) => context.repo.timeouts.git * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    pullTimeout: ({ context }) => context.repo.timeouts.git * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    decryptTimeout: ({ context }) => context.repo.timeouts.decrypt * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    applyTimeout: ({ context }) => context.repo.timeouts.apply * 1000 + STAGE_TIMEOUT_MARGIN_MS,
    verifyTimeout: ({ context }) =>
      (context.repo.healthcheck.timeout +
        (context.repo.healthcheck.url ? (context.repo.healthcheck.retries + 1) * context.repo.healthcheck.interval : 0)) *
        1000 +
      STAGE_TIMEOUT_MARGIN_MS,
    notifyTimeout: ({ context }) => (context.repo.timeouts.notify * 2 + 5) * 1000,
    bootDelay: ({ context }) => context.bootDelayMs,
    /** Waiting for a free deploy slot (global concurrency limit) is bounded too. */
    openTimeout: ({ context }) => Math.max(3_600_000, context.repo.timeouts.apply * 1000 * 4),
  },
}).createMachine({
  id: 'deploy',
  context: ({ input }) => ({
    repo: input.repo,
    lastDeployedCommit: input.lastDeployedCommit,
    lastConfigHash: input.lastConfigHash,
    pinnedCommit: input.pinnedCommit,
    suspended: input.suspended,
    remoteHead: null,
    lastCheckAt: null,
    nextCheckAt: null,
    lastError: null,
    attempt: 0,
    run: null,
    followUp: null,
    suspendRequested: false,
    pendingConfig: null,
    checkTrigger: input.checkOnStart ? 'boot' : 'poll',
    jitter: input.jitter ?? 0.5,
    bootDelayMs: Math.max(0, input.bootDelayMs ?? 0),
    notice: null,
    rolledBack: false,
  }),
  initial: 'boot',
  // Busy states coalesce requests: at most one follow-up, a suspend or config change waits for idle.
  on: {
    'repo.check': {
      actions: assign({
        followUp: ({ context, event }) =>
          context.followUp ?? { kind: 'check', trigger: event.trigger ?? 'webhook', deploymentId: null, commit: null },
      }),
    },
    'repo.deploy': {
      actions: assign({
        followUp: ({ context, event }) => ({
          kind: 'deploy',
          trigger: event.trigger ?? 'api',
          deploymentId: context.followUp?.kind === 'deploy' ? context.followUp.deploymentId ?? event.deploymentId ?? null : event.deploymentId ?? null,
          commit: event.commit ?? (context.followUp?.kind === 'deploy' ? context.followUp.commit : null),
        }),
      }),
    },
    'repo.suspend': { actions: assign({ suspendRequested: true }) },
    'repo.resume': { actions: assign({ suspendRequested: false }) },
    'config.updated': { actions: assign({ pendingConfig: ({ event }) => event.repo }) },
  },
  states: {
    boot: {
      description: 'Restored from the store; decide whether to start suspended, check at once, or wait one interval.',
      entry: [
        {
          type: 'warn',
          params: ({ context }) => ({
            message: context.repo.checkInterval < 10 ? `check_interval ${context.repo.checkInterval}s is below 10s: the remote will be polled very often` : '',
          }),
        },
      ],
      always: [
        { guard: 'isSuspended', target: 'suspended' },
        { guard: ({ context }) => context.checkTrigger === 'boot' && context.bootDelayMs === 0, target: 'checking' },
        { guard: ({ context }) => context.checkTrigger !== 'boot', target: 'idle' },
      ],
      after: { bootDelay: { target: 'checking' } },
    },
    idle: {
      description: 'Waiting for the poll interval (or backoff), a webhook, a forced deploy or a config change.',
      entry: assign({ nextCheckAt: ({ context }) => Date.now() + pollDelayMs(context, context.jitter), run: null, notice: null, rolledBack: false }),
      exit: assign({ nextCheckAt: null }),
      always: [
        {
          guard: 'suspendRequested',
          target: 'suspended',
          actions: assign({ suspendRequested: false, suspended: true, followUp: null }),
        },
        {
          guard: 'hasPendingConfig',
          target: 'checking',
          actions: [
            assign({
              repo: ({ context }) => context.pendingConfig ?? context.repo,
              pendingConfig: null,
              pinnedCommit: null,
              checkTrigger: 'config',
            }),
            { type: 'persistPin', params: { pinnedCommit: null } },
          ],
        },
        {
          guard: 'followUpDeployWithCommit',
          target: 'pulling',
          actions: assign({
            run: ({ context }) =>
              newRun(context, {
                trigger: context.followUp?.trigger ?? 'api',
                forced: true,
                deploymentId: context.followUp?.deploymentId ?? null,
                commit: context.followUp?.commit ?? null,
              }),
            followUp: null,
          }),
        },
        {
          guard: 'followUpDeploy',
          target: 'checking',
          actions: assign({
            run: ({ context }) =>
              newRun(context, { trigger: context.followUp?.trigger ?? 'api', forced: true, deploymentId: context.followUp?.deploymentId ?? null }),
            checkTrigger: ({ context }) => context.followUp?.trigger ?? 'api',
            followUp: null,
          }),
        },
        {
          guard: 'followUpCheck',
          target: 'checking',
          actions: assign({ checkTrigger: ({ context }) => context.followUp?.trigger ?? 'webhook', followUp: null }),
        },
      ],
      after: { pollDelay: { target: 'checking', actions: assign({ checkTrigger: ({ context }) => (context.attempt > 0 ? 'retry' : 'poll') }) } },
      on: {
        'repo.check': { target: 'checking', actions: assign({ checkTrigger: ({ event }) => event.trigger ?? 'webhook' }) },
        'repo.deploy': [
          {
            guard: ({ event }) => Boolean(event.commit),
            target: 'pulling',
            actions: assign({
              run: ({ context, event }) =>
                newRun(context, { trigger: event.trigger ?? 'api', forced: true, deploymentId: event.deploymentId ?? null, commit: event.commit ?? null }),
            }),
          },
          {
            target: 'checking',
            actions: assign({
              run: ({ context, event }) => newRun(context, { trigger: event.trigger ?? 'api', forced: true, deploymentId: event.deploymentId ?? null }),
              checkTrigger: ({ event }) => event.trigger ?? 'api',
            }),
          },
        ],
        'repo.suspend': { target: 'suspended', actions: assign({ suspended: true }) },
        'config.updated': {
          target: 'checking',
          actions: [
            assign({ repo: ({ event }) => event.repo, pinnedCommit: null, checkTrigger: 'config' }),
            { type: 'persistPin', params: { pinnedCommit: null } },
          ],
        },
      },
    },
    checking: {
      description: 'Ask the remote for the branch head (one ref advertisement, no objects) and compare with the last good deploy.',
      invoke: {
        src: 'check',
        input: ({ context }) => ({ repo: context.repo }),
        onDone: [
          {
            guard: ({ context, event }) => decideDeploy(context, event.output.commit) === 'deploy',
            target: 'pulling',
            actions: [
              { type: 'recordCheck', params: ({ event }) => ({ commit: event.output.commit, result: 'changed' as const, error: null }) },
              assign({
                remoteHead: ({ event }) => event.output.commit,
                lastCheckAt: () => Date.now(),
                run: ({ context, event }) =>
                  context.run
                    ? { ...context.run, commit: context.run.commit ?? event.output.commit }
                    : newRun(context, { trigger: context.checkTrigger, forced: false, commit: event.output.commit }),
              }),
            ],
          },
          {
            guard: ({ context }) => context.lastError?.stage === 'checking',
            target: 'notifying',
            actions: [
              { type: 'recordCheck', params: ({ context, event }) => ({ commit: event.output.commit, result: decideDeploy(context, event.output.commit) as 'unchanged' | 'pinned', error: null }) },
              assign({
                remoteHead: ({ event }) => event.output.commit,
                lastCheckAt: () => Date.now(),
                attempt: 0,
                notice: ({ context }) => ({ kind: 'check_recovered' as const, run: null, error: null, commit: context.lastDeployedCommit }),
                lastError: null,
              }),
            ],
          },
          {
            target: 'idle',
            actions: [
              {
                type: 'recordCheck',
                params: ({ context, event }) => ({
                  commit: event.output.commit,
                  result: decideDeploy(context, event.output.commit) as 'unchanged' | 'pinned',
                  error: null,
                }),
              },
              assign({
                remoteHead: ({ event }) => event.output.commit,
                lastCheckAt: () => Date.now(),
                attempt: 0,
                lastError: ({ context }) => (context.lastError?.stage === 'checking' ? null : context.lastError),
              }),
            ],
          },
        ],
        onError: [
          {
            guard: 'hasRun',
            target: 'finishing',
            actions: [
              { type: 'recordCheck', params: ({ event }) => ({ commit: null, result: 'error' as const, error: toStepError('checking', event.error) }) },
              assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('checking', event.error) }), lastCheckAt: () => Date.now() }),
            ],
          },
          {
            target: 'notifying',
            actions: [
              { type: 'recordCheck', params: ({ event }) => ({ commit: null, result: 'error' as const, error: toStepError('checking', event.error) }) },
              assign({
                lastCheckAt: () => Date.now(),
                lastError: ({ event }) => toStepError('checking', event.error),
                attempt: ({ context, event }) => (toStepError('checking', event.error).transient ? context.attempt + 1 : 0),
                notice: ({ context, event }) => ({ kind: 'check_failed' as const, run: null, error: toStepError('checking', event.error), commit: context.lastDeployedCommit }),
              }),
            ],
          },
        ],
      },
      after: {
        checkTimeout: [
          {
            guard: 'hasRun',
            target: 'finishing',
            actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: timeoutError('checking', context.repo.timeouts.git) }) }),
          },
          {
            target: 'notifying',
            actions: assign({
              lastError: ({ context }) => timeoutError('checking', context.repo.timeouts.git),
              attempt: ({ context }) => context.attempt + 1,
              notice: ({ context }) => ({ kind: 'check_failed' as const, run: null, error: timeoutError('checking', context.repo.timeouts.git), commit: context.lastDeployedCommit }),
            }),
          },
        ],
      },
    },
    pulling: {
      description: 'Record the deployment (waiting for a free deploy slot), then force the checkout to exactly the target commit.',
      initial: 'opening',
      states: {
        opening: {
          invoke: {
            src: 'openRun',
            input: ({ context }) => ({ repo: context.repo, run: context.run as Run }),
            onDone: {
              target: 'syncing',
              actions: assign({
                run: ({ context, event }) => ({ ...(context.run as Run), deploymentId: event.output.deploymentId, startedAt: Date.now() }),
              }),
            },
            onError: {
              target: '#deploy.finishing',
              actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('pulling', event.error) }) }),
            },
          },
          after: {
            openTimeout: {
              target: '#deploy.finishing',
              actions: assign({
                run: ({ context }) => ({
                  ...(context.run as Run),
                  error: { stage: 'pulling' as const, code: 'DEPLOY_SLOT_TIMEOUT', message: 'no free deploy slot in time', transient: true },
                }),
              }),
            },
          },
        },
        syncing: {
          invoke: {
            src: 'pull',
            input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null, commit: context.run?.commit ?? null }),
            onDone: {
              target: '#deploy.decrypting',
              actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), commit: event.output.commit }) }),
            },
            onError: {
              target: '#deploy.finishing',
              actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('pulling', event.error) }) }),
            },
          },
          after: {
            pullTimeout: {
              target: '#deploy.finishing',
              actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: timeoutError('pulling', context.repo.timeouts.git) }) }),
            },
          },
        },
      },
    },
    decrypting: {
      description: 'Decrypt the SOPS files (env_file, decrypt[]) next to the compose file, mode 0600.',
      always: { guard: 'noSecrets', target: 'applying' },
      invoke: {
        src: 'decrypt',
        input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null }),
        onDone: {
          target: 'applying',
          actions: assign({
            run: ({ context, event }) => ({ ...(context.run as Run), decrypted: [...(context.run?.decrypted ?? []), ...event.output.written] }),
          }),
        },
        onError: {
          target: 'finishing',
          actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('decrypting', event.error) }) }),
        },
      },
      after: {
        decryptTimeout: {
          target: 'finishing',
          actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: timeoutError('decrypting', context.repo.timeouts.decrypt) }) }),
        },
      },
    },
    applying: {
      description: 'docker compose up -d on the checkout; a failure rolls back to the last good commit when there is one.',
      invoke: {
        src: 'apply',
        input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null, commit: context.run?.commit ?? null }),
        onDone: { target: 'verifying' },
        onError: [
          {
            guard: ({ context, event }) => canRollback(context, toStepError('applying', event.error)),
            target: 'rollingBack',
            actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('applying', event.error) }) }),
          },
          {
            target: 'finishing',
            actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('applying', event.error) }) }),
          },
        ],
      },
      after: {
        applyTimeout: [
          {
            guard: ({ context }) => canRollback(context, { ...timeoutError('applying', 0), transient: false }),
            target: 'rollingBack',
            actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: { ...timeoutError('applying', context.repo.timeouts.apply), transient: false } }) }),
          },
          {
            target: 'finishing',
            actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: timeoutError('applying', context.repo.timeouts.apply) }) }),
          },
        ],
      },
    },
    verifying: {
      description: 'All containers of the compose project running (healthy where a healthcheck exists), optional HTTP check.',
      invoke: {
        src: 'verify',
        input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null }),
        onDone: { target: 'finishing' },
        onError: [
          {
            guard: ({ context, event }) => canRollback(context, toStepError('verifying', event.error)),
            target: 'rollingBack',
            actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('verifying', event.error) }) }),
          },
          {
            target: 'finishing',
            actions: assign({ run: ({ context, event }) => ({ ...(context.run as Run), error: toStepError('verifying', event.error) }) }),
          },
        ],
      },
      after: {
        verifyTimeout: [
          {
            guard: ({ context }) => canRollback(context, { ...timeoutError('verifying', 0), transient: false }),
            target: 'rollingBack',
            actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: { ...timeoutError('verifying', context.repo.healthcheck.timeout), transient: false } }) }),
          },
          {
            target: 'finishing',
            actions: assign({ run: ({ context }) => ({ ...(context.run as Run), error: timeoutError('verifying', context.repo.healthcheck.timeout) }) }),
          },
        ],
      },
    },
    rollingBack: {
      description: 'Back to the previous good commit: sync, decrypt, apply, verify. The bad commit gets pinned.',
      initial: 'syncing',
      onDone: { target: 'finishing', actions: assign({ rolledBack: true }) },
      states: {
        syncing: {
          invoke: {
            src: 'pull',
            input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null, commit: context.run?.previousCommit ?? null }),
            onDone: { target: 'decrypting' },
            onError: { target: '#deploy.finishing', actions: 'setRollbackError' },
          },
          after: { pullTimeout: { target: '#deploy.finishing', actions: assign({ run: ({ context }) => withRollbackError(context.run, timeoutError('rollingBack', context.repo.timeouts.git)) }) } },
        },
        decrypting: {
          always: { guard: 'noSecrets', target: 'applying' },
          invoke: {
            src: 'decrypt',
            input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null }),
            onDone: {
              target: 'applying',
              actions: assign({
                run: ({ context, event }) => ({ ...(context.run as Run), decrypted: [...(context.run?.decrypted ?? []), ...event.output.written] }),
              }),
            },
            onError: { target: '#deploy.finishing', actions: 'setRollbackError' },
          },
          after: { decryptTimeout: { target: '#deploy.finishing', actions: assign({ run: ({ context }) => withRollbackError(context.run, timeoutError('rollingBack', context.repo.timeouts.decrypt)) }) } },
        },
        applying: {
          invoke: {
            src: 'apply',
            input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null, commit: context.run?.previousCommit ?? null }),
            onDone: { target: 'verifying' },
            onError: { target: '#deploy.finishing', actions: 'setRollbackError' },
          },
          after: { applyTimeout: { target: '#deploy.finishing', actions: assign({ run: ({ context }) => withRollbackError(context.run, timeoutError('rollingBack', context.repo.timeouts.apply)) }) } },
        },
        verifying: {
          invoke: {
            src: 'verify',
            input: ({ context }) => ({ repo: context.repo, deploymentId: context.run?.deploymentId ?? null }),
            onDone: { target: 'done' },
            onError: { target: '#deploy.finishing', actions: 'setRollbackError' },
          },
          after: { verifyTimeout: { target: '#deploy.finishing', actions: assign({ run: ({ context }) => withRollbackError(context.run, timeoutError('rollingBack', context.repo.healthcheck.timeout)) }) } },
        },
        done: { type: 'final' },
      },
    },
    finishing: {
      description: 'Transient: decide the outcome, persist it, remove plaintext secrets, then notify.',
      entry: [
        assign(({ context }) => conclude(context)),
        {
          type: 'finishRun',
          params: ({ context }) => ({ run: context.run as Run, pinnedCommit: context.pinnedCommit }),
        },
        {
          type: 'cleanupDecrypted',
          params: ({ context }) => ({ files: context.repo.keepDecrypted ? [] : context.run?.decrypted ?? [] }),
        },
      ],
      always: { target: 'notifying' },
    },
    notifying: {
      description: 'Send success/failure/rollback/recovery notifications. Never fails the deploy; bounded by a timeout.',
      invoke: {
        src: 'notify',
        input: ({ context }) => ({ repo: context.repo, run: context.run as Run, notice: context.notice as Notice }),
        onDone: { target: 'idle' },
        onError: { target: 'idle' },
      },
      after: { notifyTimeout: { target: 'idle' } },
    },
    suspended: {
      description: 'No polling and no deploys until repo.resume; persisted across restarts.',
      entry: [assign({ suspended: true, followUp: null, suspendRequested: false }), { type: 'persistSuspended', params: { suspended: true } }],
      on: {
        'repo.resume': {
          target: 'checking',
          actions: [assign({ suspended: false, checkTrigger: 'api' }), { type: 'persistSuspended', params: { suspended: false } }],
        },
        'repo.check': {},
        'repo.deploy': {},
        'repo.suspend': {},
        'config.updated': { actions: assign({ repo: ({ event }) => event.repo, pinnedCommit: null }) },
      },
    },
  },
});

/** What the notifying state reports. */
export interface Notice {
  kind: 'success' | 'failed' | 'rolled_back' | 'check_failed' | 'check_recovered';
  run: Run | null;
  error: StepError | null;
  commit: string | null;
}

function canRollback(ctx: DeployContext, err: StepError): boolean {
  const run = ctx.run;
  return Boolean(ctx.repo.rollback && run && run.previousCommit && run.previousCommit !== run.commit && !err.transient);
}

function withRollbackError(run: Run | null, err: StepError): Run {
  return { ...(run as Run), rollbackError: err };
}

type FullContext = DeployContext & { notice: Notice | null; rolledBack: boolean };

/** Outcome bookkeeping when a run ends: last good commit, pin, backoff attempt, notice. */
function conclude(ctx: FullContext): Partial<FullContext> {
  const run = ctx.run as Run;
  if (!run.error) {
    const done: Run = { ...run, outcome: 'success' };
    return {
      run: done,
      lastDeployedCommit: run.commit,
      lastConfigHash: ctx.repo.configHash,
      // A manual rollback pins the commit rolled away from, so the next poll does not redeploy it.
      pinnedCommit: run.trigger === 'rollback' && run.previousCommit && run.previousCommit !== run.commit ? run.previousCommit : null,
      attempt: 0,
      lastError: null,
      notice: { kind: 'success', run: done, error: null, commit: run.commit },
    };
  }
  const rolledBack = ctx.rolledBack && !run.rollbackError;
  const outcome = rolledBack ? 'rolled_back' : 'failed';
  const done: Run = { ...run, outcome };
  const transient = run.error.transient && !rolledBack;
  return {
    run: done,
    // A transient failure (network, engine down) is retried with backoff; anything else pins the commit.
    pinnedCommit: transient || !run.commit ? ctx.pinnedCommit : run.commit,
    attempt: transient ? ctx.attempt + 1 : 0,
    lastError: run.error,
    notice: { kind: outcome, run: done, error: run.error, commit: run.commit },
  };
}
