/**
 * @module Docker engine unreachable (a daemon process started with DOCKER_HOST pointing at a missing socket): deploys
 * fail at `applying` with DOCKER_UNREACHABLE (transient: retried with backoff, never pinned), the HTTP API keeps
 * serving and reports the engine down; after a restart with a reachable engine the same commit deploys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startGitServer } from '../helpers/git-server.ts';
import {
  cleanupProject,
  docker,
  ensureBusyboxImage,
  MARKER_LABEL,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { spawnDaemon, type DaemonProcess } from '../helpers/process.ts';
import { until } from '../helpers/wait.ts';
import { deploymentRows, projectYaml, tempDirs } from './helpers.ts';

const KEY = 'nodocker/web';

interface Health {
  status: string;
  docker: { ok: boolean; error?: string };
}

test(
  'engine unreachable: applying fails with DOCKER_UNREACHABLE, the API serves, recovery after restart',
  { timeout: 240_000 },
  async (t) => {
    if (!(await requireDocker(t))) return;
    const image = await ensureBusyboxImage();
    const git = await startGitServer();
    t.after(() => git.close());
    const dirs = await tempDirs(t, 'nodocker');
    const project = uniqueProjectName('nodocker');
    cleanupProject(t, project);
    const sha = await git.createRepo('web', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }),
    });
    await writeFile(
      path.join(dirs.configDir, 'nodocker.yaml'),
      projectYaml('nodocker', {
        web: {
          url: git.repoUrl('web'),
          composeProject: project,
          checkInterval: 1,
          extra: ['healthcheck:', '  timeout: 30'],
        },
      }),
    );
    const key = encodeURIComponent(KEY);

    let d: DaemonProcess | null = await spawnDaemon({
      ...dirs,
      env: { DOCKER_HOST: 'unix:///tmp/nonexistent.sock', SHIPARR_COMPOSE_COMMAND: undefined },
    });
    t.after(() => d?.kill('SIGKILL'));
    const failed = await until(
      () => deploymentRows(dirs.dataDir, KEY).find((r) => r.status === 'failed'),
      'a failed deploy',
      60_000,
      250,
    );
    assert.equal(failed.stage, 'applying');
    assert.match(failed.error ?? '', /DOCKER_UNREACHABLE/);
    assert.match(failed.error ?? '', /unreachable/i);
    assert.equal(failed.commit_hash, sha);

    // Transient: retried with backoff, not pinned; the API keeps answering and says the engine is down.
    const st = await until(
      async () => {
        const s = (
          await d!.api<{ attempt: number; pinnedCommit: string | null; lastError: { code: string } | null }>(
            `/api/repositories/${key}`,
          )
        ).body;
        return s.attempt >= 2 ? s : null;
      },
      'a second failed attempt (backoff)',
      60_000,
      250,
    );
    assert.equal(st.pinnedCommit, null);
    assert.equal(st.lastError?.code, 'DOCKER_UNREACHABLE');
    const health = await d.api<Health>('/api/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.docker.ok, false);
    assert.equal(health.body.status, 'degraded');
    assert.ok(
      deploymentRows(dirs.dataDir, KEY).every((r) => r.status === 'failed' || r.status === 'running'),
      'no success while the engine is away',
    );

    d.kill('SIGTERM');
    assert.deepEqual(await d.exited(), { code: 0, signal: null });

    d = await spawnDaemon({ ...dirs, env: { DOCKER_HOST: undefined, SHIPARR_COMPOSE_COMMAND: undefined } });
    const ok = await until(
      () => deploymentRows(dirs.dataDir, KEY).find((r) => r.status === 'success'),
      'the deploy after recovery',
      90_000,
      250,
    );
    assert.equal(ok.commit_hash, sha);
    assert.equal((await d.api<Health>('/api/health')).body.docker.ok, true);
    const ps = await docker([
      'ps',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
    ]);
    assert.equal(ps.stdout.trim(), 'v1 running');
    d.kill('SIGTERM');
    assert.equal((await d.exited()).code, 0);
  },
);
