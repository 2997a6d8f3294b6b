/**
 * @module The deploy machine carries why a run started (its cause) to the effects that write the reason: the webhook
 * delivery, the config keys a reload changed, the interrupted deployment a boot check recovers, the deployment a
 * rollback names; and the pull of a deploy (not of a rollback) gets the commit to count new commits from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, fromPromise, SimulatedClock, waitFor } from 'xstate';
import { deployMachine } from '../../../src/machines/deploy-machine.ts';
import type { OpenDeploymentParams, PullIn, Run } from '../../../src/machines/types.ts';
import type { RepoConfig } from '../../../src/config/schema.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

const repo = (over: Partial<RepoConfig> = {}): RepoConfig =>
  repoConfig('demo', 'app', { localPath: '/tmp/x', configHash: 'hash-1', checkInterval: 3600, ...over });

function harness(opts: {
  head: () => string;
  lastDeployedCommit?: string | null;
  lastConfigHash?: string | null;
  checkOnStart?: boolean;
  interruptedDeploymentId?: number | null;
  applyFails?: (commit: string | null) => boolean;
}) {
  const runs: Run[] = [];
  const pulls: PullIn[] = [];
  const opened: OpenDeploymentParams[] = [];
  let nextId = 1;
  const machine = deployMachine.provide({
    actors: {
      check: fromPromise(async () => ({ commit: opts.head() })),
      openRun: fromPromise(async ({ input }) => {
        runs.push(input.run);
        return { deploymentId: input.run.deploymentId ?? nextId++ };
      }),
      pull: fromPromise(async ({ input }) => {
        pulls.push(input);
        return { commit: input.commit ?? opts.head() };
      }),
      decrypt: fromPromise(async () => ({ written: [] as string[] })),
      apply: fromPromise(async ({ input }) => {
        if (opts.applyFails?.(input.commit)) throw Object.assign(new Error('boom'), { code: 'X', transient: false });
        return { output: 'ok' };
      }),
      verify: fromPromise(async () => ({ summary: 'healthy' })),
      notify: fromPromise(async (): Promise<unknown> => null),
    },
    actions: {
      openDeployment: ({ self }, p) => {
        opened.push(p);
        self.send({
          type: 'deployment.opened',
          deploymentId: nextId++,
          trigger: p.trigger,
          commit: p.commit,
          cause: p.cause,
        });
      },
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, {
    clock,
    input: {
      repo: repo(),
      lastDeployedCommit: opts.lastDeployedCommit ?? null,
      lastConfigHash:
        'lastConfigHash' in opts ? (opts.lastConfigHash ?? null) : opts.lastDeployedCommit ? 'hash-1' : null,
      pinnedCommit: null,
      suspended: false,
      checkOnStart: opts.checkOnStart ?? false,
      interruptedDeploymentId: opts.interruptedDeploymentId ?? null,
      jitter: 0.5,
      now: () => clock.now(),
    },
  });
  actor.start();
  const idleWith = (pred: () => boolean) => waitFor(actor, (s) => s.matches('idle') && pred(), { timeout: 2_000 });
  return { actor, runs, pulls, opened, idleWith };
}

test('a boot check after an interrupted deployment runs with that deployment as its cause', async () => {
  const h = harness({
    head: () => 'c1',
    lastDeployedCommit: 'c1',
    lastConfigHash: null,
    checkOnStart: true,
    interruptedDeploymentId: 41,
  });
  await h.idleWith(() => h.runs.length === 1 && h.pulls.length === 1);
  assert.equal(h.runs[0]?.trigger, 'boot');
  assert.deepEqual(h.runs[0]?.cause, { interruptedDeploymentId: 41 });
  assert.equal(h.pulls[0]?.since, 'c1', 'the deploy pull counts from the last deployed commit');
});

test('a boot check without an interrupted deployment has no cause; a first deployment counts from null', async () => {
  const h = harness({ head: () => 'c1', checkOnStart: true });
  await h.idleWith(() => h.pulls.length === 1);
  assert.equal(h.runs[0]?.cause, null);
  assert.equal(h.pulls[0]?.since, null);
});

test('a webhook check carries the provider and delivery id to the run it starts', async () => {
  const h = harness({ head: () => 'c2', lastDeployedCommit: 'c1' });
  h.actor.send({
    type: 'repo.check',
    trigger: 'webhook',
    triggeredBy: 'webhook:github',
    webhook: { provider: 'github', deliveryId: 'd-1' },
  });
  await h.idleWith(() => h.pulls.length === 1);
  assert.equal(h.runs[0]?.trigger, 'webhook');
  assert.equal(h.runs[0]?.triggeredBy, 'webhook:github');
  assert.deepEqual(h.runs[0]?.cause, { webhook: { provider: 'github', deliveryId: 'd-1' } });
});

test('a config reload runs with the changed keys as its cause', async () => {
  const h = harness({ head: () => 'c1', lastDeployedCommit: 'c1' });
  h.actor.send({
    type: 'config.updated',
    repo: repo({ composeFiles: ['compose.yaml', 'more.yaml'], configHash: 'hash-2' }),
  });
  await h.idleWith(() => h.pulls.length === 1);
  assert.equal(h.runs[0]?.trigger, 'config');
  assert.deepEqual(h.runs[0]?.cause, { configKeys: ['compose_files'] });
});

test('a rollback names the deployment it returns to; only the deploy pull gets since, not the rollback sync', async () => {
  const h = harness({ head: () => 'c2', lastDeployedCommit: 'c1' });
  h.actor.send({ type: 'repo.deploy', trigger: 'rollback', commit: 'c0', triggeredBy: 'token:ops', rollbackTo: 7 });
  await h.idleWith(() => h.pulls.length === 1);
  assert.deepEqual(h.opened[0]?.cause, { rollbackOf: 7 });
  assert.deepEqual(h.runs[0]?.cause, { rollbackOf: 7 }, 'the forced run keeps the cause of its request');

  // A failed apply rolls back automatically: the rollback's own sync does not re-count commits.
  const f = harness({ head: () => 'c3', lastDeployedCommit: 'c2', applyFails: (c) => c === 'c3' });
  f.actor.send({ type: 'repo.check', trigger: 'api' });
  await f.idleWith(() => f.pulls.length === 2);
  assert.deepEqual(
    f.pulls.map((p) => ({ commit: p.commit, since: p.since })),
    [
      { commit: 'c3', since: 'c2' },
      { commit: 'c2', since: undefined },
    ],
  );
});
