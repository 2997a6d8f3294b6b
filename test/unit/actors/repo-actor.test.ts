/**
 * @module The repository logic is one object shared by every repository's actor (the supervisor builds it once):
 * what a run keeps between its steps (its env file, its decrypted files) stays that repository's own. Real SQLite
 * store and supervisor, fake worker tasks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Supervisor, type LoadedConfig } from '../../../src/supervisor/supervisor.ts';
import { Store } from '../../../src/store/index.ts';
import { silentLogger } from '../../../src/logger.ts';
import type { RepoConfig } from '../../../src/config/schema.ts';
import type { RunTask } from '../../../src/workers/types.ts';
import type { RepoDeps } from '../../../src/actors/repo-actor.ts';
import { until } from '../../helpers/wait.ts';
import { lastSuccessfulDeployment } from '../../helpers/store-queries.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

const repo = (name: string): RepoConfig =>
  repoConfig('p', name, {
    localPath: `/tmp/none/${name}`,
    build: true,
    decrypt: [{ file: '.env.enc', format: 'dotenv' }],
  });

test('two repositories deploying at once keep their own env file and decrypted files', async () => {
  const store = Store.open(':memory:');
  const repos = [repo('a'), repo('b')];
  const cfg: LoadedConfig = {
    projects: [{ name: 'p', file: '/cfg/p.yaml', repositories: repos }],
    errors: [],
    files: [{ file: '/cfg/p.yaml', project: 'p', ok: true }],
  };
  const finished = new Set<string>();
  const decrypting = new Set<string>();
  const decrypted = new Set<string>();
  let labelled = 0;
  const seen: { task: string; project: string; envFile?: string; secretFiles?: string[] }[] = [];
  const runTask: RunTask = (async (
    name: string,
    input: {
      project?: string;
      rootDir?: string;
      envFileDir?: string;
      envFile?: string;
      secretFiles?: string[];
      step?: string;
    },
  ) => {
    switch (name) {
      case 'git-check':
        return { ok: true, durationMs: 1, commit: 'c1' };
      case 'git-sync':
        return { ok: true, durationMs: 1, commit: 'c1', cloned: false };
      case 'sops-decrypt': {
        // Both decrypts run at once: each run's env file is written while the other run is under way.
        const me = path.basename(input.rootDir as string);
        decrypting.add(me);
        await until(() => decrypting.size === 2, 'both repositories decrypting', 10_000, 2);
        decrypted.add(me);
        return {
          ok: true,
          durationMs: 1,
          written: [`/plain/${me}/.env`],
          envFile: path.join(input.envFileDir as string, '.env'),
        };
      }
      case 'plan': {
        seen.push({ task: `plan ${input.step}`, project: input.project as string, envFile: input.envFile });
        // Each plan reads its env file after both decrypts are done; the second apply starts once the first run is
        // over (its decrypted files cleaned up).
        if (input.step === 'plan') await until(() => decrypted.size === 2, 'both decrypts done', 10_000, 2);
        else if (labelled++ > 0) await until(() => finished.size === 1, 'the first run finished', 10_000, 2);
        return { ok: false, durationMs: 1, code: 'NO_PLAN', message: 'no plan here', transient: false };
      }
      case 'compose-up':
        seen.push({
          task: 'compose-up',
          project: input.project as string,
          envFile: input.envFile,
          secretFiles: input.secretFiles,
        });
        return { ok: true, durationMs: 1, output: 'up' };
      default:
        return { ok: true, durationMs: 1 };
    }
  }) as RunTask;
  // The daemon's secrets: the repository logic's type (the supervisor passes them on unchanged).
  const secrets: RepoDeps['secrets'] = { plaintextDir: '/data/plaintext' };
  const sup = new Supervisor({
    store,
    runTask,
    verify: async () => ({ ok: true, summary: 'ok' }),
    notify: async () => [],
    loadConfig: async () => cfg,
    log: silentLogger(),
    maxConcurrentDeploys: 2,
    secrets,
    plan: { hmacKey: '00', generatedDir: '/data/generated' },
    random: () => 0.5,
  });
  const unsubscribe = sup.subscribe((e) => {
    if (e.type === 'deployment.finished') finished.add(e.repoKey);
  });
  try {
    sup.start(cfg);
    await until(() => repos.every((r) => lastSuccessfulDeployment(store, r.key)), 'both deployments', 10_000);
    // Per repository: the plan, the content labels and compose up all got that repository's own env file.
    assert.equal(seen.length, 6);
    for (const r of seen) {
      const name = r.project.replace(/^p-/, '');
      assert.match(r.envFile ?? '', new RegExp(`^/data/plaintext/p-${name}-[0-9a-f]{8}/\\.env$`), r.task);
      if (r.task === 'compose-up') assert.deepEqual(r.secretFiles, [`/plain/${name}/.env`], r.project);
    }
    assert.deepEqual(new Set(seen.map((r) => r.project)), new Set(['p-a', 'p-b']));
  } finally {
    unsubscribe();
    await sup.stop(1_000);
    store.close();
  }
});
