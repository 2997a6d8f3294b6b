/** @module Deploy machine transitions with fake effects and a SimulatedClock (no I/O, no real timers for delays). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, SimulatedClock, waitFor, type AnyActorRef } from 'xstate';
import { deployMachine, type Notice } from '../../../src/machines/deploy-machine.ts';
import {
  activeRun,
  canRollback,
  conclude,
  decideDeploy,
  newRun,
  pollDelayMs,
} from '../../../src/machines/deploy-rules.ts';
import type { DeployContext, OpenDeploymentParams, Run, StepError } from '../../../src/machines/types.ts';
import type { RepoConfig } from '../../../src/config/schema.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

function repoFixture(over: Partial<RepoConfig> = {}): RepoConfig {
  return repoConfig('demo', 'app', {
    url: 'http://127.0.0.1/app.git',
    localPath: '/tmp/x',
    composeProject: 'demo-app',
    configHash: 'hash-1',
    ...over,
  });
}

const fail = (code: string, transient = false) => Object.assign(new Error(`${code} happened`), { code, transient });

interface Script {
  head: () => string;
  checkError?: () => unknown;
  applyFails?: (commit: string | null) => unknown;
  verifyFails?: (commit: string | null) => unknown;
  /** Called with the number of decrypt calls so far (1 = the deploy's, 2 = the rollback's). */
  decryptFails?: (n: number) => unknown;
  /** Resolves when the apply effect may finish (to hold a deploy "busy"). */
  applyGate?: (commit: string | null) => Promise<void>;
}

function harness(
  script: Script,
  opts: {
    repo?: Partial<RepoConfig>;
    lastDeployedCommit?: string | null;
    lastConfigHash?: string | null;
    pinnedCommit?: string | null;
    suspended?: boolean;
    checkOnStart?: boolean;
    clockAt?: number;
    opens?: number[];
  } = {},
) {
  const calls: { name: string; input: unknown }[] = [];
  const finished: { run: Run; pinnedCommit: string | null }[] = [];
  const notices: Notice[] = [];
  const checks: { result: string; error: StepError | null }[] = [];
  const persisted: { suspended?: boolean; pin?: string | null }[] = [];
  const cleaned: string[][] = [];
  const opened: OpenDeploymentParams[] = [];
  let nextId = 1;
  const machine = deployMachine.provide({
    actors: {
      check: fromPromise(async ({ input }) => {
        calls.push({ name: 'check', input });
        const e = script.checkError?.();
        if (e) throw e;
        return { commit: script.head() };
      }),
      openRun: fromPromise(async ({ input }) => {
        calls.push({ name: 'openRun', input });
        return { deploymentId: input.run.deploymentId ?? nextId++ };
      }),
      pull: fromPromise(async ({ input }) => {
        calls.push({ name: 'pull', input });
        return { commit: input.commit ?? script.head() };
      }),
      decrypt: fromPromise(async ({ input }) => {
        calls.push({ name: 'decrypt', input });
        const e = script.decryptFails?.(calls.filter((c) => c.name === 'decrypt').length);
        if (e) throw e;
        return { written: ['/tmp/x/.env'] };
      }),
      apply: fromPromise(async ({ input }) => {
        calls.push({ name: 'apply', input });
        if (script.applyGate) await script.applyGate(input.commit);
        const e = script.applyFails?.(input.commit);
        if (e) throw e;
        return { output: 'ok' };
      }),
      verify: fromPromise(async ({ input }) => {
        calls.push({ name: 'verify', input });
        const last = [...calls].reverse().find((c) => c.name === 'apply')?.input as
          { commit: string | null } | undefined;
        const e = script.verifyFails?.(last?.commit ?? null);
        if (e) throw e;
        return { summary: 'healthy' };
      }),
      notify: fromPromise(async ({ input }) => {
        notices.push(input.notice);
        return null;
      }),
    },
    actions: {
      recordCheck: (_, p) => void checks.push({ result: p.result, error: p.error }),
      finishRun: (_, p) => void finished.push(p),
      persistSuspended: (_, p) => void persisted.push({ suspended: p.suspended }),
      persistPin: (_, p) => void persisted.push({ pin: p.pinnedCommit }),
      cleanupDecrypted: (_, p) => void cleaned.push(p.files),
      // The row of an accepted deploy request: ids from `opens` (as the tests expect them), then from nextId.
      openDeployment: ({ self }, p) => {
        opened.push(p);
        self.send({
          type: 'deployment.opened',
          deploymentId: opts.opens?.shift() ?? nextId++,
          trigger: p.trigger,
          commit: p.commit,
        });
      },
    },
  });
  const clock = new SimulatedClock();
  clock.set(opts.clockAt ?? 0);
  const actor = createActor(machine, {
    clock,
    input: {
      repo: repoFixture(opts.repo),
      lastDeployedCommit: opts.lastDeployedCommit ?? null,
      lastConfigHash: opts.lastConfigHash ?? (opts.lastDeployedCommit ? 'hash-1' : null),
      pinnedCommit: opts.pinnedCommit ?? null,
      suspended: opts.suspended ?? false,
      checkOnStart: opts.checkOnStart ?? true,
      jitter: 0.5,
      now: () => clock.now(),
    },
  });
  return {
    actor,
    clock,
    calls,
    finished,
    notices,
    checks,
    persisted,
    cleaned,
    opened,
    count: (n: string) => calls.filter((c) => c.name === n).length,
  };
}

const idleAfter = (actor: AnyActorRef, pred: () => boolean) =>
  waitFor(actor, (s) => s.matches('idle') && pred(), { timeout: 2_000 });

test('boot with a new commit runs the whole pipeline and records one success', async () => {
  const h = harness({ head: () => 'c1' }, { repo: { decrypt: [{ file: '.env.enc' }] } });
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.deepEqual(
    h.calls.map((c) => c.name),
    ['check', 'openRun', 'pull', 'decrypt', 'apply', 'verify'],
  );
  assert.equal(h.finished[0]?.run.outcome, 'success');
  assert.equal(h.finished[0]?.run.commit, 'c1');
  assert.equal(h.finished[0]?.run.trigger, 'boot');
  assert.equal(h.notices[0]?.kind, 'success');
  const ctx = h.actor.getSnapshot().context;
  assert.equal(ctx.lastDeployedCommit, 'c1');
  assert.equal(ctx.lastConfigHash, 'hash-1');
});

test('an unchanged head creates no run and runs no deploy step', async () => {
  const h = harness({ head: () => 'c1' }, { lastDeployedCommit: 'c1' });
  h.actor.start();
  await idleAfter(h.actor, () => h.checks.length === 1);
  h.clock.increment(pollDelayMs({ repo: repoFixture(), attempt: 0 }, 0.5));
  await idleAfter(h.actor, () => h.checks.length === 2);
  assert.equal(h.count('openRun'), 0);
  assert.equal(h.count('apply'), 0);
  assert.equal(h.finished.length, 0);
  assert.deepEqual(
    h.checks.map((c) => c.result),
    ['unchanged', 'unchanged'],
  );
});

test('a config hash change redeploys the same commit', async () => {
  const h = harness({ head: () => 'c1' }, { lastDeployedCommit: 'c1', lastConfigHash: 'old-hash' });
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.outcome, 'success');
});

test('the poll interval triggers a check and a new commit deploys', async () => {
  let head = 'c1';
  const h = harness({ head: () => head }, { lastDeployedCommit: 'c1', checkOnStart: false });
  h.actor.start();
  assert.equal(h.actor.getSnapshot().value, 'idle');
  head = 'c2';
  h.clock.increment(60_000 * 1.1);
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.commit, 'c2');
  assert.equal(h.finished[0]?.run.trigger, 'poll');
  assert.equal(h.finished[0]?.run.previousCommit, 'c1');
});

test('a failing verify rolls back to the previous commit and pins the bad one', async () => {
  let head = 'good';
  const h = harness(
    { head: () => head, verifyFails: (c) => (c === 'bad' ? fail('VERIFY_UNHEALTHY') : null) },
    { lastDeployedCommit: 'good', checkOnStart: false },
  );
  h.actor.start();
  head = 'bad';
  h.actor.send({ type: 'repo.check', trigger: 'webhook' });
  await idleAfter(h.actor, () => h.finished.length === 1);
  const run = h.finished[0]!.run;
  assert.equal(run.outcome, 'rolled_back');
  assert.equal(run.error?.stage, 'verifying');
  assert.equal(h.finished[0]?.pinnedCommit, 'bad');
  const applies = h.calls.filter((c) => c.name === 'apply').map((c) => (c.input as { commit: string }).commit);
  assert.deepEqual(applies, ['bad', 'good']);
  assert.equal(h.notices.at(-1)?.kind, 'rolled_back');
  const ctx = h.actor.getSnapshot().context;
  assert.equal(ctx.lastDeployedCommit, 'good');
  assert.equal(ctx.pinnedCommit, 'bad');

  // The pinned commit is not retried by later polls...
  h.actor.send({ type: 'repo.check' });
  await idleAfter(h.actor, () => h.checks.length === 2);
  assert.equal(h.checks[1]?.result, 'pinned');
  assert.equal(h.count('openRun'), 1);

  // ...but a newer good commit deploys and clears the pin.
  head = 'fixed';
  h.actor.send({ type: 'repo.check' });
  await idleAfter(h.actor, () => h.finished.length === 2);
  assert.equal(h.finished[1]?.run.outcome, 'success');
  assert.equal(h.actor.getSnapshot().context.pinnedCommit, null);
});

test('a forced deploy of the pinned commit is attempted again', async () => {
  const h = harness(
    { head: () => 'bad', applyFails: (c) => (c === 'bad' ? fail('COMPOSE_UP_FAILED') : null) },
    { lastDeployedCommit: 'good', pinnedCommit: 'bad', checkOnStart: false, opens: [41] },
  );
  h.actor.start();
  h.actor.send({ type: 'repo.deploy' });
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.deploymentId, 41);
  assert.equal(h.finished[0]?.run.outcome, 'rolled_back');
});

test('failure without a previous commit ends failed, no rollback', async () => {
  const h = harness({ head: () => 'c1', applyFails: () => fail('COMPOSE_UP_FAILED') });
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.outcome, 'failed');
  assert.equal(h.finished[0]?.run.error?.code, 'COMPOSE_UP_FAILED');
  assert.equal(h.count('apply'), 1);
  assert.equal(h.notices[0]?.kind, 'failed');
});

test('a decrypt failure stops before applying; nothing is rolled back', async () => {
  const h = harness(
    { head: () => 'c2', decryptFails: () => fail('SOPS_NO_MATCHING_KEY') },
    { lastDeployedCommit: 'c1', repo: { decrypt: [{ file: '.env.enc' }] } },
  );
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.outcome, 'failed');
  assert.equal(h.finished[0]?.run.error?.stage, 'decrypting');
  assert.equal(h.count('apply'), 0);
});

test('a failing rollback ends failed and keeps both errors', async () => {
  const h = harness({ head: () => 'bad', applyFails: () => fail('COMPOSE_UP_FAILED') }, { lastDeployedCommit: 'good' });
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  const run = h.finished[0]!.run;
  assert.equal(run.outcome, 'failed');
  assert.equal(run.error?.stage, 'applying');
  assert.equal(run.rollbackError?.stage, 'rollingBack');
});

test('transient check failures back off exponentially, notify, and recover', async () => {
  let down = true;
  const h = harness(
    { head: () => 'c1', checkError: () => (down ? fail('GIT_UNREACHABLE', true) : null) },
    { lastDeployedCommit: 'c1' },
  );
  h.actor.start();
  await idleAfter(h.actor, () => h.checks.length === 1);
  let ctx = h.actor.getSnapshot().context;
  assert.equal(ctx.attempt, 1);
  assert.equal(ctx.lastError?.code, 'GIT_UNREACHABLE');
  assert.equal(h.notices[0]?.kind, 'check_failed');
  const d1 = pollDelayMs({ repo: repoFixture(), attempt: 1 }, 0.5);
  const d2 = pollDelayMs({ repo: repoFixture(), attempt: 2 }, 0.5);
  assert.ok(d2 > d1 && d1 < 60_000, `backoff grows: ${d1} < ${d2}`);
  h.clock.increment(d1);
  await idleAfter(h.actor, () => h.checks.length === 2);
  ctx = h.actor.getSnapshot().context;
  assert.equal(ctx.attempt, 2);
  down = false;
  h.clock.increment(d2);
  await idleAfter(h.actor, () => h.checks.length === 3);
  ctx = h.actor.getSnapshot().context;
  assert.equal(ctx.attempt, 0);
  assert.equal(ctx.lastError, null);
  assert.equal(h.notices.at(-1)?.kind, 'check_recovered');
  assert.equal(h.finished.length, 0, 'check failures are not deployments');
});

test('backoff is capped at four intervals', () => {
  assert.equal(pollDelayMs({ repo: repoFixture({ checkInterval: 2 }), attempt: 30 }, 0.5), 8_000);
  assert.equal(pollDelayMs({ repo: repoFixture({ checkInterval: 60 }), attempt: 0 }, 0), 54_000);
  assert.equal(pollDelayMs({ repo: repoFixture({ checkInterval: 60 }), attempt: 0 }, 1), 66_000);
});

test('a transient apply failure is not rolled back or pinned, and is retried with backoff', async () => {
  let engineDown = true;
  const h = harness(
    { head: () => 'c2', applyFails: () => (engineDown ? fail('DOCKER_UNREACHABLE', true) : null) },
    { lastDeployedCommit: 'c1' },
  );
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.outcome, 'failed');
  assert.equal(h.finished[0]?.pinnedCommit, null);
  assert.equal(h.actor.getSnapshot().context.attempt, 1);
  engineDown = false;
  h.clock.increment(pollDelayMs({ repo: repoFixture(), attempt: 1 }, 0.5));
  await idleAfter(h.actor, () => h.finished.length === 2);
  assert.equal(h.finished[1]?.run.outcome, 'success');
  assert.equal(h.finished[1]?.run.trigger, 'retry');
});

test('two deploy requests while busy coalesce into exactly one extra deployment', async () => {
  let release!: () => void;
  let gate: Promise<void> = new Promise((r) => (release = r));
  const h = harness({ head: () => 'c1', applyGate: () => gate }, { lastDeployedCommit: null, opens: [7, 8] });
  h.actor.start();
  await waitFor(h.actor, (s) => s.matches('applying'), { timeout: 2_000 });
  h.actor.send({ type: 'repo.deploy' });
  h.actor.send({ type: 'repo.deploy' });
  h.actor.send({ type: 'repo.check' });
  assert.equal(h.actor.getSnapshot().context.followUp?.deploymentId, 7);
  assert.equal(h.opened.length, 1, 'the second request opened no row of its own');
  const first = release;
  gate = Promise.resolve();
  first();
  await idleAfter(h.actor, () => h.finished.length === 2);
  // Idle leaves at once while a request is pending: none is left, and the next poll finds the deployed head.
  assert.equal(h.actor.getSnapshot().context.followUp, null);
  const checks = h.checks.length;
  h.clock.increment(pollDelayMs({ repo: repoFixture(), attempt: 0 }, 0.5));
  await idleAfter(h.actor, () => h.checks.length === checks + 1);
  assert.equal(h.finished.length, 2);
  assert.equal(h.finished[1]?.run.deploymentId, 7);
  assert.equal(h.finished[1]?.run.forced, true);
  assert.equal(h.count('openRun'), 2);
});

test('a forced deploy of an unchanged commit redeploys', async () => {
  const h = harness({ head: () => 'c1' }, { lastDeployedCommit: 'c1', checkOnStart: false, opens: [3] });
  h.actor.start();
  h.actor.send({ type: 'repo.deploy', trigger: 'api' });
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.commit, 'c1');
  assert.equal(h.finished[0]?.run.outcome, 'success');
});

test('a deploy with an explicit commit (rollback) skips the check', async () => {
  const h = harness({ head: () => 'c3' }, { lastDeployedCommit: 'c3', checkOnStart: false, opens: [5] });
  h.actor.start();
  h.actor.send({ type: 'repo.deploy', commit: 'c1', trigger: 'rollback' });
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.count('check'), 0);
  assert.equal(h.finished[0]?.run.commit, 'c1');
  assert.equal(h.actor.getSnapshot().context.lastDeployedCommit, 'c1');
});

test('suspend stops polling until resume; both persisted', async () => {
  const h = harness({ head: () => 'c1' }, { lastDeployedCommit: 'c1', checkOnStart: false });
  h.actor.start();
  h.actor.send({ type: 'repo.suspend' });
  assert.equal(h.actor.getSnapshot().value, 'suspended');
  // Timers of the simulated clock fire, and sent events are processed, synchronously (a check would have been
  // invoked, and the state left, before send() returns).
  h.clock.increment(10 * 60_000);
  h.actor.send({ type: 'repo.check' });
  h.actor.send({ type: 'repo.deploy' });
  assert.equal(h.count('check'), 0);
  assert.equal(h.actor.getSnapshot().value, 'suspended');
  assert.equal(h.actor.getSnapshot().context.followUp, null, 'nothing queued for after the resume');
  h.actor.send({ type: 'repo.resume' });
  await idleAfter(h.actor, () => h.checks.length === 1);
  assert.deepEqual(
    h.persisted.filter((p) => 'suspended' in p).map((p) => p.suspended),
    [true, false],
  );
});

test('a repository restored as suspended boots suspended', () => {
  const h = harness({ head: () => 'c1' }, { suspended: true });
  h.actor.start();
  assert.equal(h.actor.getSnapshot().value, 'suspended');
});

test('suspend while deploying takes effect after the deploy', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = harness({ head: () => 'c1', applyGate: () => gate });
  h.actor.start();
  await waitFor(h.actor, (s) => s.matches('applying'), { timeout: 2_000 });
  h.actor.send({ type: 'repo.suspend' });
  assert.equal(h.actor.getSnapshot().value, 'applying');
  release();
  await waitFor(h.actor, (s) => s.matches('suspended'), { timeout: 2_000 });
  assert.equal(h.finished[0]?.run.outcome, 'success');
});

test('config.updated while busy applies at the next idle and re-checks', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = harness({ head: () => 'c1', applyGate: () => gate });
  h.actor.start();
  await waitFor(h.actor, (s) => s.matches('applying'), { timeout: 2_000 });
  h.actor.send({ type: 'config.updated', repo: repoFixture({ branch: 'next', configHash: 'hash-2' }) });
  assert.equal(h.actor.getSnapshot().context.repo.branch, 'main');
  release();
  await idleAfter(h.actor, () => h.finished.length === 2);
  assert.equal(h.actor.getSnapshot().context.repo.branch, 'next');
  assert.equal(h.finished[1]?.run.trigger, 'config');
});

test('a hung apply is cut by the named applyTimeout delay and the repo is not wedged', async () => {
  const h = harness({ head: () => 'c1', applyGate: () => new Promise<void>(() => {}) });
  h.actor.start();
  await waitFor(h.actor, (s) => s.matches('applying'), { timeout: 2_000 });
  h.clock.increment(60_000 + 10_000);
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.error?.code, 'STAGE_TIMEOUT');
  assert.equal(h.finished[0]?.run.outcome, 'failed');
  assert.ok(h.actor.getSnapshot().matches('idle'));
});

test('plaintext cleanup is asked for after the deploy unless keep_decrypted', async () => {
  const cleaned: string[][] = [];
  for (const keep of [false, true]) {
    const machine = deployMachine.provide({
      actors: {
        check: fromPromise(async () => ({ commit: 'c1' })),
        openRun: fromPromise(async () => ({ deploymentId: 1 })),
        pull: fromPromise(async () => ({ commit: 'c1' })),
        decrypt: fromPromise(async () => ({ written: ['/x/.env'] })),
        apply: fromPromise(async () => ({ output: '' })),
        verify: fromPromise(async () => ({ summary: '' })),
        notify: fromPromise<unknown, unknown>(async () => null) as never,
      },
      actions: { cleanupDecrypted: (_, p) => void cleaned.push(p.files) },
    });
    const actor = createActor(machine, {
      input: {
        repo: repoFixture({ decrypt: [{ file: '.env.enc' }], keepDecrypted: keep }),
        lastDeployedCommit: null,
        lastConfigHash: null,
        pinnedCommit: null,
        suspended: false,
        checkOnStart: true,
      },
    }).start();
    await waitFor(actor, (s) => s.matches('idle') && s.context.lastDeployedCommit === 'c1', { timeout: 2_000 });
    actor.stop();
  }
  assert.deepEqual(cleaned, [['/x/.env'], []]);
});

test('a manual rollback pins the commit it moved away from', async () => {
  const h = harness({ head: () => 'c3' }, { lastDeployedCommit: 'c3', checkOnStart: false, opens: [9] });
  h.actor.start();
  h.actor.send({ type: 'repo.deploy', commit: 'c1', trigger: 'rollback' });
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.actor.getSnapshot().context.pinnedCommit, 'c3');
  h.actor.send({ type: 'repo.check' });
  await idleAfter(h.actor, () => h.checks.length === 1);
  assert.equal(h.checks[0]?.result, 'pinned');
});

test('a boot delay postpones the first check (spread of many repositories)', async () => {
  const checks: number[] = [];
  const machine = deployMachine.provide({
    actors: { check: fromPromise(async () => (checks.push(1), { commit: 'c1' })) },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, {
    clock,
    input: {
      repo: repoFixture(),
      lastDeployedCommit: 'c1',
      lastConfigHash: 'hash-1',
      pinnedCommit: null,
      suspended: false,
      checkOnStart: true,
      bootDelayMs: 5_000,
      now: () => clock.now(),
    },
  }).start();
  assert.equal(actor.getSnapshot().value, 'boot');
  clock.increment(4_999);
  assert.equal(checks.length, 0);
  clock.increment(1);
  await waitFor(actor, (s) => s.matches('idle'), { timeout: 1_000 });
  assert.equal(checks.length, 1);
  actor.stop();
});

test('timestamps come from the clock the actor runs on (here the SimulatedClock), not the wall clock', async () => {
  let head = 'c1';
  const h = harness({ head: () => head }, { lastDeployedCommit: 'c1', checkOnStart: false, clockAt: 1_000 });
  h.actor.start();
  const interval = pollDelayMs({ repo: repoFixture(), attempt: 0 }, 0.5);
  assert.equal(h.actor.getSnapshot().context.nextCheckAt, 1_000 + interval);
  head = 'c2';
  h.clock.increment(interval);
  await idleAfter(h.actor, () => h.finished.length === 1);
  assert.equal(h.finished[0]?.run.startedAt, 1_000 + interval);
  const ctx = h.actor.getSnapshot().context;
  assert.equal(ctx.lastCheckAt, 1_000 + interval);
  assert.equal(ctx.nextCheckAt, 1_000 + 2 * interval);
});

test('a hung apply with a good commit to go back to is cut by applyTimeout and rolled back', async () => {
  const hangOnBad = (c: string | null) => (c === 'bad' ? new Promise<void>(() => {}) : Promise.resolve());
  const h = harness({ head: () => 'bad', applyGate: hangOnBad }, { lastDeployedCommit: 'good' });
  h.actor.start();
  await waitFor(h.actor, (s) => s.matches('applying'), { timeout: 2_000 });
  h.clock.increment(60_000 + 10_000);
  await idleAfter(h.actor, () => h.finished.length === 1);
  const run = h.finished[0]!.run;
  assert.equal(run.outcome, 'rolled_back');
  assert.deepEqual([run.error?.stage, run.error?.code, run.error?.transient], ['applying', 'STAGE_TIMEOUT', false]);
  assert.equal(h.finished[0]?.pinnedCommit, 'bad');
  assert.equal(h.actor.getSnapshot().context.lastDeployedCommit, 'good');
});

test('a failure inside rollingBack is the rollback error; the plaintext the deploy wrote is still cleaned up', async () => {
  const h = harness(
    {
      head: () => 'bad',
      verifyFails: (c) => (c === 'bad' ? fail('VERIFY_UNHEALTHY') : null),
      decryptFails: (n) => (n === 2 ? fail('SOPS_NO_MATCHING_KEY') : null),
    },
    { lastDeployedCommit: 'good', repo: { decrypt: [{ file: '.env.enc' }] } },
  );
  h.actor.start();
  await idleAfter(h.actor, () => h.finished.length === 1);
  const run = h.finished[0]!.run;
  assert.equal(run.outcome, 'failed');
  assert.deepEqual([run.error?.stage, run.error?.code], ['verifying', 'VERIFY_UNHEALTHY']);
  assert.deepEqual([run.rollbackError?.stage, run.rollbackError?.code], ['rollingBack', 'SOPS_NO_MATCHING_KEY']);
  assert.deepEqual(
    h.calls.filter((c) => c.name === 'pull').map((c) => (c.input as { commit: string | null }).commit),
    ['bad', 'good'],
  );
  assert.deepEqual(
    h.cleaned.map((files) => files.length),
    [1],
    'one cleanup, of the one file the deploy decrypted',
  );
});

// The rules, as plain functions of the context (deploy-rules.ts).

const ruleContext = (over: Partial<DeployContext> = {}): DeployContext => ({
  repo: repoFixture(),
  lastDeployedCommit: 'good',
  lastConfigHash: 'hash-1',
  pinnedCommit: null,
  suspended: false,
  remoteHead: null,
  lastCheckAt: null,
  nextCheckAt: null,
  lastError: null,
  attempt: 0,
  run: null,
  followUp: null,
  suspendRequested: false,
  pendingConfig: null,
  ...over,
});
const stepError = (transient: boolean): StepError => ({ stage: 'applying', code: 'X', message: 'x', transient });

test('rules: a head deploys when new, pinned, forced or the config changed', () => {
  const ctx = ruleContext({ pinnedCommit: 'bad' });
  assert.equal(decideDeploy(ctx, 'good'), 'unchanged');
  assert.equal(decideDeploy(ctx, 'new'), 'deploy');
  assert.equal(decideDeploy(ctx, 'bad'), 'pinned');
  assert.equal(decideDeploy({ ...ctx, lastConfigHash: 'old' }, 'good'), 'deploy');
  assert.equal(decideDeploy({ ...ctx, run: newRun(ctx, 0, { trigger: 'api', forced: true }) }, 'bad'), 'deploy');
});

test('rules: a run starts at the time it is given and remembers the last good commit', () => {
  const run = newRun(ruleContext(), 42_000, { trigger: 'webhook', forced: false, commit: 'c2' });
  assert.deepEqual([run.startedAt, run.previousCommit, run.commit, run.deploymentId], [42_000, 'good', 'c2', null]);
});

test('rules: rollback only to a different known-good commit, only for a non-transient failure, only when enabled', () => {
  const run = newRun(ruleContext(), 0, { trigger: 'poll', forced: false, commit: 'bad' });
  assert.equal(canRollback(ruleContext({ run }), stepError(false)), true);
  assert.equal(canRollback(ruleContext({ run }), stepError(true)), false);
  assert.equal(canRollback(ruleContext({ run: { ...run, previousCommit: null } }), stepError(false)), false);
  assert.equal(canRollback(ruleContext({ run: { ...run, commit: 'good' } }), stepError(false)), false);
  assert.equal(canRollback(ruleContext({ run, repo: repoFixture({ rollback: false }) }), stepError(false)), false);
});

test('rules: concluding a run sets outcome, pin, backoff and notice; a state without a run says so', () => {
  const base = { ...ruleContext({ pinnedCommit: 'older', attempt: 2 }), notice: null, rolledBack: false };
  const run = newRun(base, 0, { trigger: 'poll', forced: false, commit: 'bad' });
  const transient = conclude({ ...base, run: { ...run, error: stepError(true) } });
  assert.deepEqual(
    [transient.run?.outcome, transient.pinnedCommit, transient.attempt, transient.notice?.kind],
    ['failed', 'older', 3, 'failed'],
  );
  const rolledBack = conclude({ ...base, rolledBack: true, run: { ...run, error: stepError(false) } });
  assert.deepEqual([rolledBack.run?.outcome, rolledBack.pinnedCommit, rolledBack.attempt], ['rolled_back', 'bad', 0]);
  const manual = conclude({ ...base, run: newRun(base, 0, { trigger: 'rollback', forced: true, commit: 'c1' }) });
  assert.deepEqual([manual.run?.outcome, manual.lastDeployedCommit, manual.pinnedCommit], ['success', 'c1', 'good']);
  assert.throws(() => activeRun(base), /deploy machine: no run in this state/);
});

test('a deploy request with a commit replaces a queued one (its row is closed), and each request is answered', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = harness({ head: () => 'c1', applyGate: () => gate }, { lastDeployedCommit: null, opens: [7, 8] });
  const answers: number[] = [];
  h.actor.on('deploy.accepted', (e) => void answers.push(e.deploymentId));
  h.actor.start();
  await waitFor(h.actor, (s) => s.matches('applying'), { timeout: 2_000 });
  h.actor.send({ type: 'repo.deploy' });
  h.actor.send({ type: 'repo.deploy' });
  h.actor.send({ type: 'repo.deploy', commit: 'c0', trigger: 'rollback' });
  assert.deepEqual(answers, [7, 7, 8]);
  assert.deepEqual(
    h.opened.map((p) => p.supersedes),
    [null, 7],
  );
  assert.equal(h.actor.getSnapshot().context.followUp?.commit, 'c0');
  release();
  await idleAfter(h.actor, () => h.finished.length === 2);
  assert.equal(h.finished[1]?.run.deploymentId, 8);
});

test('rules: an update Swarm rolled back itself is rolled_back even without a rollback of our own, never success', () => {
  const base = { ...ruleContext(), notice: null, rolledBack: false };
  const run = newRun(base, 0, { trigger: 'poll', forced: false, commit: 'bad' });
  const swarm: StepError = { stage: 'verifying', code: 'SWARM_ROLLED_BACK', message: 'rolled back', transient: false };
  const alone = conclude({ ...base, run: { ...run, previousCommit: null, error: swarm } });
  assert.deepEqual([alone.run?.outcome, alone.pinnedCommit, alone.notice?.kind], ['rolled_back', 'bad', 'rolled_back']);
  const ours = conclude({ ...base, rolledBack: true, run: { ...run, error: swarm } });
  assert.equal(ours.run?.outcome, 'rolled_back');
  const ourFailed = conclude({
    ...base,
    rolledBack: false,
    run: { ...run, error: swarm, rollbackError: stepError(false) },
  });
  assert.equal(ourFailed.run?.outcome, 'failed', 'a failed rollback of our own stays failed');
  const paused = conclude({ ...base, run: { ...run, error: { ...swarm, code: 'SWARM_UPDATE_PAUSED' } } });
  assert.equal(paused.run?.outcome, 'failed');
});
