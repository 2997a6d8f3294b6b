/**
 * @module Crash recovery with real processes: `kill -9` of the daemon while compose is applying, then a restart on the
 * same data dir. The open row becomes `interrupted` (never left `running`) and, since the store's last good commit is
 * still the old one, the first check of the restarted daemon redeploys the target commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
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
import { composeWrapper, deploymentRows, openDb, projectYaml, tempDirs } from './helpers.ts';

const KEY = 'crash/web';

/** Kills every compose wrapper process group the wrapper recorded (what a container's death does to its children). */
async function killWrappers(pidsFile: string): Promise<void> {
  const pids = (await readFile(pidsFile, 'utf8').catch(() => ''))
    .split('\n')
    .map(Number)
    .filter((n) => n > 0);
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

test(
  'kill -9 during applying: restart leaves no running row, one interrupted, and redeploys the target commit',
  { timeout: 240_000 },
  async (t) => {
    if (!(await requireDocker(t))) return;
    const image = await ensureBusyboxImage();
    const git = await startGitServer();
    t.after(() => git.close());
    const dirs = await tempDirs(t, 'crash');
    const project = uniqueProjectName('crash');
    cleanupProject(t, project);
    const wrapper = await composeWrapper(dirs.root, 3);
    const sha = await git.createRepo('web', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }),
    });
    await writeFile(
      `${dirs.configDir}/crash.yaml`,
      projectYaml('crash', {
        web: { url: git.repoUrl('web'), composeProject: project, extra: ['healthcheck:', '  timeout: 30'] },
      }),
    );
    const env = { SHIPARR_COMPOSE_COMMAND: wrapper.command };

    let d: DaemonProcess | null = await spawnDaemon({ ...dirs, env });
    t.after(() => d?.kill('SIGKILL'));
    const key = encodeURIComponent(KEY);
    await until(
      async () => (await d!.api<{ state: string }>(`/api/repositories/${key}`)).body.state === 'applying',
      'the boot deploy to reach applying',
      60_000,
      50,
    );
    d.kill('SIGKILL');
    const first = await d.exited();
    assert.equal(first.signal, 'SIGKILL');
    await killWrappers(wrapper.wrapperPids);

    const crashed = deploymentRows(dirs.dataDir, KEY);
    assert.equal(crashed.length, 1);
    assert.equal(crashed[0]?.status, 'running', 'the crash really happened mid-deploy');
    assert.equal(crashed[0]?.stage, 'applying');

    d = await spawnDaemon({ ...dirs, env });
    const done = await until(
      () =>
        deploymentRows(dirs.dataDir, KEY).find(
          (r) => r.status !== 'running' && r.status !== 'pending' && r.status !== 'interrupted',
        ),
      'the redeploy after restart',
      90_000,
      250,
    );
    assert.equal(done.status, 'success', `redeploy failed: ${done.error}`);
    assert.equal(done.commit_hash, sha);
    assert.equal(done.trigger, 'boot', 'the first check after the restart redeployed it');

    const rows = deploymentRows(dirs.dataDir, KEY);
    assert.equal(rows.filter((r) => r.status === 'running' || r.status === 'pending').length, 0, 'no row left open');
    const interrupted = rows.filter((r) => r.status === 'interrupted');
    assert.equal(interrupted.length, 1, 'exactly one interrupted');
    assert.equal(interrupted[0]?.id, crashed[0]?.id);
    assert.equal(interrupted[0]?.commit_hash, sha);
    assert.equal(rows.length, 2, 'one redeploy, nothing else');

    const ps = await docker([
      'ps',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
    ]);
    assert.equal(ps.stdout.trim(), 'v1 running');
    const status = (await d.api<{ lastDeployedCommit: string; state: string }>(`/api/repositories/${key}`)).body;
    assert.equal(status.lastDeployedCommit, sha);

    d.kill('SIGTERM');
    assert.deepEqual(await d.exited(), { code: 0, signal: null });
    const db = openDb(dirs.dataDir);
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
  },
);
