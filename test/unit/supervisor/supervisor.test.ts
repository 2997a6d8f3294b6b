/**
 * @module Supervisor with a real SQLite store and fake worker tasks: global deploy limit, config diff (added,
 * removed, changed), last-good config on invalid files, crash restarts with a bound, commands and conflicts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor, type LoadedConfig } from '../../../src/supervisor/supervisor.ts';
import { Store } from '../../../src/store/index.ts';
import { DeploySlots } from '../../../src/actors/deploy-slots.ts';
import { silentLogger } from '../../../src/logger.ts';
import type { RepoConfig, ProjectConfig } from '../../../src/config/schema.ts';
import type { RunTask } from '../../../src/workers/types.ts';
import { until } from '../../helpers/wait.ts';
import { countDeployments, lastSuccessfulDeployment, listDeploymentsByStatus } from '../../helpers/store-queries.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

function repo(project: string, name: string, over: Partial<RepoConfig> = {}): RepoConfig {
  return repoConfig(project, name, { localPath: `/tmp/none/${name}`, ...over });
}
const project = (name: string, repos: RepoConfig[], file = `/cfg/${name}.yaml`): ProjectConfig => ({
  name,
  file,
  repositories: repos,
});
const config = (projects: ProjectConfig[], bad: string[] = []): LoadedConfig => ({
  projects,
  errors: bad.map((file) => ({ file, path: '', message: 'YAML syntax error at line 1' })),
  files: [
    ...projects.map((p) => ({ file: p.file, project: p.name, ok: true })),
    ...bad.map((file) => ({ file, ok: false })),
  ],
});

function fakeTasks(opts: { heads: Record<string, string>; applyGate?: () => Promise<void> }) {
  let running = 0;
  let maxRunning = 0;
  const applies: string[] = [];
  const runTask: RunTask = (async (name: string, input: { url?: string; project?: string; commit?: string }) => {
    switch (name) {
      case 'git-check':
        return { ok: true, durationMs: 1, commit: opts.heads[input.url as string] ?? 'c1' };
      case 'git-sync':
        return {
          ok: true,
          durationMs: 1,
          commit: input.commit ?? opts.heads[input.url as string] ?? 'c1',
          cloned: false,
        };
      case 'compose-up': {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        applies.push(input.project as string);
        try {
          if (opts.applyGate) await opts.applyGate();
          else await new Promise<void>((r) => setImmediate(r));
        } finally {
          running -= 1;
        }
        return { ok: true, durationMs: 1, output: 'up' };
      }
      default:
        return { ok: true, durationMs: 1 };
    }
  }) as RunTask;
  return { runTask, applies, maxRunning: () => maxRunning };
}

function build(store: Store, runTask: RunTask, load: () => LoadedConfig, max = 1) {
  return new Supervisor({
    store,
    runTask,
    verify: async () => ({ ok: true, summary: 'ok' }),
    notify: async () => [],
    loadConfig: async () => load(),
    log: silentLogger(),
    maxConcurrentDeploys: max,
    secrets: {},
    random: () => 0.5,
    restart: { max: 2, windowMs: 60_000, baseDelayMs: 10 },
  });
}

test('the global deploy limit holds: three repos, limit 1, never two applies at once', async () => {
  const store = Store.open(':memory:');
  // Each apply holds its slot until every repository still to deploy is queued for one: the limit is contended.
  const allQueued = async () => {
    await until(
      () => sup.slots.queued === 3 - tasks.applies.length,
      'the other repositories queued for a slot',
      10_000,
      5,
    );
  };
  const tasks = fakeTasks({ heads: {}, applyGate: allQueued });
  const cfg = config([project('p', [repo('p', 'a'), repo('p', 'b'), repo('p', 'c')])]);
  const sup = build(store, tasks.runTask, () => cfg, 1);
  sup.start(cfg);
  await until(
    () => ['p/a', 'p/b', 'p/c'].every((k) => lastSuccessfulDeployment(store, k)),
    'three deployments',
    10_000,
  );
  assert.equal(tasks.maxRunning(), 1);
  assert.equal(tasks.applies.length, 3);
  await sup.stop(1_000);
  store.close();
});

test('reload applies the diff: added spawn, removed stop (history kept), changed redeploy', async () => {
  const store = Store.open(':memory:');
  const tasks = fakeTasks({ heads: {} });
  let current = config([project('p', [repo('p', 'a'), repo('p', 'b')])]);
  const sup = build(store, tasks.runTask, () => current, 2);
  sup.start(current);
  await until(
    () => lastSuccessfulDeployment(store, 'p/a') && lastSuccessfulDeployment(store, 'p/b'),
    'boot deploys',
    10_000,
  );
  current = config([project('p', [repo('p', 'a', { branch: 'next', configHash: 'h2' }), repo('p', 'c')])]);
  const diff = await sup.reload();
  assert.deepEqual(diff.added, ['p/c']);
  assert.deepEqual(diff.removed, ['p/b']);
  assert.deepEqual(diff.changed, ['p/a']);
  await until(() => lastSuccessfulDeployment(store, 'p/c'), 'added repo deploys', 10_000);
  await until(
    () =>
      store.listDeployments('p/a', { limit: 10 }).items.some((d) => d.trigger === 'config' && d.status === 'success'),
    'changed repo redeploys',
    10_000,
  );
  assert.equal(sup.get('p/b')?.state, 'removed', 'removed repo has no actor');
  assert.ok(!sup.list().some((r) => r.key === 'p/b'), 'and is not listed');
  assert.equal(store.getRepository('p/b')?.active, false);
  assert.equal(countDeployments(store, 'p/b'), 1, 'history of the removed repo is kept');
  await sup.stop(1_000);
  store.close();
});

test("an invalid file keeps the project's last good config and reports the error", async () => {
  const store = Store.open(':memory:');
  const tasks = fakeTasks({ heads: {} });
  const good = config([project('p', [repo('p', 'a')])]);
  let current = good;
  const sup = build(store, tasks.runTask, () => current, 2);
  sup.start(good);
  await until(() => lastSuccessfulDeployment(store, 'p/a'), 'boot deploy', 10_000);
  current = config([], ['/cfg/p.yaml']);
  const r = await sup.reload();
  assert.equal(r.errors.length, 1);
  assert.deepEqual(r.removed, []);
  assert.ok(sup.get('p/a'), 'repo still active');
  assert.equal(sup.configErrors[0]?.file, '/cfg/p.yaml');
  assert.ok(sup.projects().find((p) => p.name === 'p')?.error, 'error visible on the project');
  current = good;
  await sup.reload();
  assert.equal(sup.configErrors.length, 0);
  await sup.stop(1_000);
  store.close();
});

test('an actor that crashes is restarted with backoff, then marked failed after the bound', async () => {
  const store = Store.open(':memory:');
  const tasks = fakeTasks({ heads: {} });
  let crashes = 0;
  // A store write that throws inside an action makes the actor itself error (not just a task failure).
  const flaky = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'updateRepositoryState') {
        return (key: string, patch: object) => {
          if (key === 'p/bad' && 'lastCheckedAt' in patch) {
            crashes += 1;
            throw new Error('disk on fire');
          }
          return target.updateRepositoryState(key, patch as never);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const cfg = config([project('p', [repo('p', 'bad'), repo('p', 'good')])]);
  const sup = build(flaky as Store, tasks.runTask, () => cfg, 2);
  sup.start(cfg);
  await until(() => sup.get('p/bad')?.state === 'failed', 'failed state', 10_000);
  assert.equal(crashes, 3, 'first run + 2 restarts');
  assert.equal(sup.get('p/bad')?.restarts, 2);
  assert.equal(sup.get('p/bad')?.lastError?.code, 'ACTOR_FAILED');
  await until(() => lastSuccessfulDeployment(store, 'p/good'), 'the other repo is unaffected', 10_000);
  await sup.stop(1_000);
  store.close();
});

test('commands: suspend/resume persist, rollback without history conflicts, deploy while suspended conflicts', async () => {
  const store = Store.open(':memory:');
  const tasks = fakeTasks({ heads: {} });
  const cfg = config([project('p', [repo('p', 'a')])]);
  const sup = build(store, tasks.runTask, () => cfg, 2);
  sup.start(cfg);
  await until(() => lastSuccessfulDeployment(store, 'p/a'), 'boot deploy', 10_000);
  assert.throws(() => sup.rollback('p/a', {}), /no earlier successful deployment/);
  await until(() => sup.get('p/a')?.state === 'idle', 'idle', 5_000);
  assert.equal(sup.suspend('p/a').suspended, true);
  assert.equal(store.getRepository('p/a')?.suspended, true);
  assert.throws(() => sup.deploy('p/a', { trigger: 'api' }), /suspended/);
  assert.equal(sup.check('p/a', 'webhook'), false);
  assert.equal(sup.resume('p/a').suspended, false);
  assert.equal(store.getRepository('p/a')?.suspended, false);
  const { deploymentId } = sup.deploy('p/a', { trigger: 'api' });
  assert.equal((await sup.waitForDeployment(deploymentId, 5_000))?.status, 'success');
  assert.throws(() => sup.deploy('p/nope', { trigger: 'api' }), /not active/);
  await sup.stop(1_000);
  store.close();
});

test('stop() leaves no deployment running: an in-flight deploy past the grace period is interrupted', async () => {
  const store = Store.open(':memory:');
  const tasks = fakeTasks({ heads: {}, applyGate: () => new Promise<void>(() => {}) });
  const cfg = config([project('p', [repo('p', 'a')])]);
  const sup = build(store, tasks.runTask, () => cfg, 2);
  sup.start(cfg);
  await until(() => sup.get('p/a')?.state === 'applying', 'applying', 5_000);
  await sup.stop(200);
  assert.equal(listDeploymentsByStatus(store, 'running').length, 0);
  assert.equal(listDeploymentsByStatus(store, 'interrupted').length, 1);
  store.close();
});

test('DeploySlots: FIFO hand-over, re-acquire is a no-op, release of a waiter removes it', async () => {
  const slots = new DeploySlots(1);
  await slots.acquire('a');
  await slots.acquire('a');
  assert.equal(slots.inUse, 1);
  const order: string[] = [];
  const b = slots.acquire('b').then(() => order.push('b'));
  const c = slots.acquire('c').then(
    () => order.push('c'),
    () => order.push('c-rejected'),
  );
  assert.equal(slots.queued, 2);
  slots.release('c');
  slots.release('a');
  await b;
  await c;
  assert.deepEqual(order, ['c-rejected', 'b']);
  assert.equal(slots.inUse, 1);
  const ac = new AbortController();
  const d = slots.acquire('d', ac.signal);
  ac.abort();
  await assert.rejects(d, /aborted/);
  assert.equal(slots.queued, 0);
});

test('an interrupted deployment is re-applied at boot even when the commit did not change', async () => {
  const store = Store.open(':memory:');
  const tasks = fakeTasks({ heads: {} });
  const cfg = config([project('p', [repo('p', 'a')])]);
  let sup = build(store, tasks.runTask, () => cfg, 2);
  sup.start(cfg);
  await until(() => lastSuccessfulDeployment(store, 'p/a'), 'first deploy', 10_000);
  await until(() => sup.get('p/a')?.state === 'idle', 'idle', 5_000);
  await sup.stop(1_000);
  // Simulate a crash in the middle of a forced redeploy of the same commit.
  const open = store.createDeployment({ repoKey: 'p/a', trigger: 'api', status: 'running', commit: 'c1' });
  store.markInterrupted();
  assert.equal(store.getDeployment(open.id)?.status, 'interrupted');
  const before = tasks.applies.length;
  sup = build(store, tasks.runTask, () => cfg, 2);
  sup.start(cfg);
  await until(
    () => tasks.applies.length === before + 1 && sup.get('p/a')?.state === 'idle',
    're-apply after the interruption',
    10_000,
  );
  assert.equal(store.latestDeployment('p/a')?.status, 'success');
  await sup.stop(1_000);
  store.close();
});
