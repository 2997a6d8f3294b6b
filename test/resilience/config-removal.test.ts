/**
 * @module A project file deleted while one of its repositories is mid-deploy: the actor is stopped (its task aborted)
 * and the open deployment is recorded `interrupted` at once, instead of staying `running` until the next boot.
 * Real supervisor, store and config loader; worker tasks are stubbed so compose can be held in `applying`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../../src/logger.ts';
import { Store } from '../../src/store/index.ts';
import { loadProjects } from '../../src/config/load.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import type { RunTask } from '../../src/workers/types.ts';
import { until } from '../helpers/wait.ts';
import { tempDirs } from './helpers.ts';
import { listDeploymentsByStatus } from '../helpers/store-queries.ts';

test('removing a repository during a deploy records the deployment interrupted and keeps history', async (t) => {
  const dirs = await tempDirs(t, 'removal');
  const file = path.join(dirs.configDir, 'gone.yaml');
  await writeFile(
    file,
    'project: gone\nrepositories:\n  r:\n    url: http://127.0.0.1:1/r.git\n    check_interval: 3600\n',
  );
  const store = Store.open(path.join(dirs.dataDir, 'shiparr.db'));
  const commit = 'd'.repeat(40);
  let aborted = false;
  const runTask = (async (name: string, _input: unknown, signal?: AbortSignal) => {
    if (name === 'git-check') return { ok: true, durationMs: 1, commit };
    if (name === 'git-sync') return { ok: true, durationMs: 1, commit, cloned: true };
    // compose-up: hold until the actor is stopped.
    await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
    aborted = true;
    return { ok: false, durationMs: 1, code: 'COMPOSE_ABORTED', message: 'aborted', transient: true };
  }) as unknown as RunTask;
  const loadConfig = () => loadProjects(dirs.configDir, { env: {}, dataPath: dirs.dataDir });
  const supervisor = new Supervisor({
    store,
    runTask,
    loadConfig,
    log: createLogger({ level: 'silent', format: 'json' }),
    maxConcurrentDeploys: 1,
    secrets: {},
    verify: async () => ({ ok: true, summary: 'ok' }),
    notify: async () => [],
  });
  supervisor.start(await loadConfig());
  t.after(async () => {
    await supervisor.stop(1_000);
    store.close();
  });
  await until(() => supervisor.get('gone/r')?.state === 'applying', 'applying', 10_000, 10);
  const id = supervisor.get('gone/r')?.currentDeploymentId;
  assert.ok(id);

  await rm(file);
  const diff = await supervisor.reload();
  assert.deepEqual(diff.removed, ['gone/r']);
  const d = store.getDeployment(id);
  assert.equal(d?.status, 'interrupted');
  assert.match(d?.error ?? '', /removed from the configuration/);
  assert.equal(store.getRepository('gone/r')?.active, false);
  assert.equal(listDeploymentsByStatus(store, 'running').length, 0);
  await until(() => aborted, 'the compose task to be aborted', 5_000, 10);
});
