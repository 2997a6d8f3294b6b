/**
 * @module Graceful shutdown under load with a real process: SIGTERM while compose is applying. With a long enough grace
 * period the deploy completes; with a short one it is recorded `interrupted`. Either way the exit code is 0, no row is
 * left open and SQLite's integrity check passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startGitServer } from '../helpers/git-server.ts';
import {
  cleanupProject,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { spawnDaemon } from '../helpers/process.ts';
import { until } from '../helpers/wait.ts';
import { composeWrapper, deploymentRows, openDb, projectYaml, tempDirs } from './helpers.ts';

const KEY = 'grace/web';

for (const c of [
  { grace: '30', expect: 'success', what: 'the in-flight deploy completes' },
  { grace: '1', expect: 'interrupted', what: 'the deploy is recorded interrupted when the grace period is too short' },
] as const) {
  test(
    `SIGTERM during applying (grace ${c.grace}s): ${c.what}; exit 0; DB consistent`,
    { timeout: 180_000 },
    async (t) => {
      if (!(await requireDocker(t))) return;
      const image = await ensureBusyboxImage();
      const git = await startGitServer();
      t.after(() => git.close());
      const dirs = await tempDirs(t, 'grace');
      const project = uniqueProjectName('grace');
      cleanupProject(t, project);
      const wrapper = await composeWrapper(dirs.root, 3);
      const sha = await git.createRepo('web', {
        'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }),
      });
      await writeFile(
        path.join(dirs.configDir, 'grace.yaml'),
        projectYaml('grace', {
          web: { url: git.repoUrl('web'), composeProject: project, extra: ['healthcheck:', '  timeout: 30'] },
        }),
      );
      const d = await spawnDaemon({
        ...dirs,
        env: { SHIPARR_COMPOSE_COMMAND: wrapper.command, SHIPARR_SHUTDOWN_GRACE: c.grace },
      });
      t.after(() => d.kill('SIGKILL'));
      const key = encodeURIComponent(KEY);
      await until(
        async () => (await d.api<{ state: string }>(`/api/repositories/${key}`)).body.state === 'applying',
        'applying',
        60_000,
        50,
      );

      d.kill('SIGTERM');
      const exit = await until(
        () => Promise.race([d.exited(), new Promise<null>((r) => setTimeout(() => r(null), 1_000))]),
        'exit',
        90_000,
      );
      assert.deepEqual(exit, { code: 0, signal: null });

      const rows = deploymentRows(dirs.dataDir, KEY);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.status, c.expect, rows[0]?.error ?? '');
      assert.equal(rows[0]?.commit_hash, sha);
      assert.ok(
        d.logs.some((l) => l['msg'] === 'stopped'),
        'the shutdown ran to its end',
      );
      const db = openDb(dirs.dataDir);
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        assert.equal(
          (
            db.prepare("SELECT count(*) AS n FROM deployments WHERE status IN ('pending','running')").get() as {
              n: number;
            }
          ).n,
          0,
        );
      } finally {
        db.close();
      }
    },
  );
}
