/**
 * @module A compose process that never returns: killed (with its whole process group) at `timeouts.apply`, the
 * deployment recorded failed with a timeout code, and the repository is not wedged — a later forced deploy through
 * the real compose runs and succeeds.
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
import { startTestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { composeWrapper, projectYaml, tempDirs } from './helpers.ts';

const KEY = 'hung/web';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test(
  'hung compose is killed at timeouts.apply, recorded failed, and a later forced deploy runs',
  { timeout: 180_000 },
  async (t) => {
    if (!(await requireDocker(t))) return;
    const image = await ensureBusyboxImage();
    const git = await startGitServer();
    t.after(() => git.close());
    const dirs = await tempDirs(t, 'hung');
    const project = uniqueProjectName('hung');
    cleanupProject(t, project);
    const wrapper = await composeWrapper(dirs.root, 0);
    await writeFile(wrapper.modeFile, 'hang');
    const saved = process.env.SHIPARR_COMPOSE_COMMAND;
    process.env.SHIPARR_COMPOSE_COMMAND = wrapper.command;
    t.after(() => {
      if (saved === undefined) delete process.env.SHIPARR_COMPOSE_COMMAND;
      else process.env.SHIPARR_COMPOSE_COMMAND = saved;
    });
    const sha = await git.createRepo('web', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }),
    });
    const yaml = (apply: number) =>
      projectYaml('hung', {
        web: {
          url: git.repoUrl('web'),
          composeProject: project,
          checkInterval: 2,
          extra: ['timeouts:', `  apply: ${apply}`, 'healthcheck:', '  timeout: 30'],
        },
      });
    const daemon = await startTestDaemon({ dirs, projects: { 'hung.yaml': yaml(3) } });
    t.after(() => daemon.close());

    const rows = () => daemon.store.listDeployments(KEY, { limit: 50 }).items;
    const failed = await until(
      () => rows().find((r) => r.status !== 'running' && r.status !== 'pending'),
      'the hung deploy to end',
      60_000,
    );
    assert.equal(failed.status, 'failed');
    assert.equal(failed.stage, 'applying');
    assert.match(failed.error ?? '', /COMPOSE_TIMEOUT|STAGE_TIMEOUT/);
    assert.equal(failed.commit, sha);

    const [shell, child] = (await readFile(wrapper.pidsFile, 'utf8')).trim().split(/\s+/).map(Number);
    assert.ok(shell && child, 'the fake compose recorded its pids');
    await until(() => !alive(shell) && !alive(child), 'the hung compose process group to be gone', 10_000);

    // Not wedged: the actor is idle again, and the commit is pinned (not retried by polls).
    const st = await until(
      () => {
        const s = daemon.supervisor.get(KEY);
        return s && s.state === 'idle' ? s : null;
      },
      'idle after the failure',
      15_000,
    );
    assert.equal(st.pinnedCommit, sha);
    assert.equal(st.busy, false);

    // Real compose needs more than 3 s for a first `up` (network + container creation): give it a realistic timeout
    // through a config reload, then force a deploy.
    await writeFile(wrapper.modeFile, 'real');
    await daemon.writeProject('hung.yaml', yaml(120));
    const reload = await daemon.supervisor.reload();
    assert.deepEqual(reload.changed, [KEY]);
    const { deploymentId } = daemon.supervisor.deploy(KEY, { trigger: 'api' });
    const ok = await daemon.supervisor.waitForDeployment(deploymentId, 120_000);
    assert.equal(ok?.status, 'success', ok?.error ?? '');
    assert.equal(ok?.commit, sha);
    assert.equal(ok?.trigger, 'api');
    const ps = await docker([
      'ps',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
    ]);
    assert.equal(ps.stdout.trim(), 'v1 running');
  },
);
