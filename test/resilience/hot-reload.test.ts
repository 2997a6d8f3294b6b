/**
 * @module Hot configuration reload without restarting the daemon: a new project file deploys, a branch change
 * redeploys from the new branch, an invalid edit keeps the last good config and shows the error (project API and
 * health) until fixed, a deleted file stops the actors but keeps history. POST /api/reload and SIGHUP reload too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
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
import { checksCompleted, countChecks, startTestDaemon } from '../helpers/daemon.ts';
import { spawnDaemon } from '../helpers/process.ts';
import { until } from '../helpers/wait.ts';
import { projectYaml, tempDirs } from './helpers.ts';
import { getProject } from '../helpers/store-queries.ts';

const KEY = 'hot/web';

/** Whether process `pid` has a handler installed for `signal` (Linux: the SigCgt mask of /proc/<pid>/status). */
function catches(pid: number, signal: NodeJS.Signals): boolean {
  const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return mask !== undefined && ((BigInt(`0x${mask}`) >> BigInt(os.constants.signals[signal] - 1)) & 1n) === 1n;
}

interface ProjectBody {
  name: string;
  active: boolean;
  error: { file: string; message: string }[] | null;
}
interface HealthBody {
  status: string;
  config: { ok: boolean; errors: { file: string; message: string }[] };
}

test(
  'file watcher: add → deploy, branch change → redeploy, invalid → kept + error, fixed, deleted → stopped with history',
  { timeout: 240_000 },
  async (t) => {
    if (!(await requireDocker(t))) return;
    const image = await ensureBusyboxImage();
    const git = await startGitServer();
    t.after(() => git.close());
    const dirs = await tempDirs(t, 'hot');
    const project = uniqueProjectName('hot');
    cleanupProject(t, project);
    const main = await git.createRepo('web', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'main' }),
    });
    const blue = await git.commit(
      'web',
      { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'blue' }) },
      { branch: 'blue' },
    );
    const daemon = await startTestDaemon({ dirs, daemon: { watch: true } });
    t.after(() => daemon.close());
    const file = path.join(dirs.configDir, 'hot.yaml');
    const yaml = (branch: string) =>
      projectYaml('hot', {
        web: {
          url: git.repoUrl('web'),
          branch,
          composeProject: project,
          checkInterval: 2,
          extra: ['healthcheck:', '  timeout: 30'],
        },
      });
    const api = async <T>(p: string): Promise<T> => (await (await fetch(`${daemon.url}${p}`)).json()) as T;
    const rows = () => daemon.store.listDeployments(KEY, { limit: 50 }).items;
    const marker = async () =>
      (
        await docker([
          'ps',
          '--filter',
          `label=com.docker.compose.project=${project}`,
          '--format',
          `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
        ])
      ).stdout.trim();

    assert.equal(daemon.supervisor.list().length, 0);
    await writeFile(file, yaml('main'));
    const first = await until(
      () => rows().find((d) => d.status === 'success'),
      'the deploy of the added project',
      90_000,
    );
    assert.equal(first.commit, main);
    assert.equal(await marker(), 'main running');

    await writeFile(file, yaml('blue'));
    const second = await until(
      () => rows().find((d) => d.commit === blue && d.status !== 'running' && d.status !== 'pending'),
      'the deploy from branch blue',
      90_000,
    );
    assert.equal(second.status, 'success', second.error ?? '');
    assert.equal(second.trigger, 'config');
    assert.equal(daemon.supervisor.get(KEY)?.branch, 'blue');
    assert.equal(await marker(), 'blue running');

    await writeFile(file, 'project: hot\nrepositories: [unclosed\n');
    const broken = await until(
      async () => {
        const p = await api<ProjectBody>('/api/projects/hot');
        return p.error?.length ? p : null;
      },
      'the config error in the project API',
      15_000,
    );
    assert.equal(broken.active, true);
    assert.equal(broken.error?.[0]?.file, file);
    const health = await api<HealthBody>('/api/health');
    assert.equal(health.status, 'degraded');
    assert.equal(health.config.ok, false);
    assert.equal(health.config.errors[0]?.file, file);
    const kept = daemon.supervisor.get(KEY);
    assert.equal(kept?.active, true, 'the last good config stays active');
    assert.equal(kept?.branch, 'blue');
    assert.notEqual(kept?.state, 'removed');

    await writeFile(file, yaml('blue'));
    await until(async () => (await api<ProjectBody>('/api/projects/hot')).error === null, 'the error to clear', 15_000);
    assert.equal((await api<HealthBody>('/api/health')).config.ok, true);

    // A second project that keeps polling while hot/web is removed (its remote answers 404, so it never deploys): the
    // witness that the daemon's polls go on.
    await writeFile(
      path.join(dirs.configDir, 'witness.yaml'),
      projectYaml('witness', { idle: { url: git.repoUrl('no-such-repo'), checkInterval: 1 } }),
    );
    await until(() => daemon.supervisor.get('witness/idle'), 'the witness project to load', 15_000);

    await until(() => daemon.supervisor.get(KEY)?.busy === false, 'idle', 30_000);
    const count = rows().length;
    await rm(file);
    await until(() => !daemon.supervisor.list().some((r) => r.key === KEY), 'the repository actor to stop', 15_000);
    const checkedAt = daemon.store.getRepository(KEY)?.lastCheckedAt;
    const removedChecks = countChecks(daemon.supervisor, KEY);
    t.after(() => removedChecks.stop());
    const repo = daemon.store.getRepository(KEY);
    assert.equal(repo?.active, false, 'repository marked inactive');
    assert.equal(repo?.lastCommit, blue, 'its state is kept');
    assert.equal(daemon.supervisor.get(KEY)?.state, 'removed');
    assert.equal(daemon.store.listDeployments(KEY, { limit: 50 }).items.length, count, 'history kept');
    assert.equal(getProject(daemon.store, 'hot')?.active, false);
    // A new commit that a poll of hot/web would deploy; then several polls of the witness (checked every second, like
    // hot/web every 2 s) complete while nothing polls hot/web.
    await git.commit(
      'web',
      { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'blue2' }) },
      { branch: 'blue' },
    );
    await checksCompleted(daemon.supervisor, 'witness/idle', 4);
    assert.equal(removedChecks.count, 0, 'a removed repository is not polled');
    assert.equal(daemon.store.getRepository(KEY)?.lastCheckedAt, checkedAt);
    assert.equal(rows().length, count, 'a removed repository is not deployed');
  },
);

test('POST /api/reload applies a new file without a watcher', { timeout: 60_000 }, async (t) => {
  const git = await startGitServer();
  t.after(() => git.close());
  const dirs = await tempDirs(t, 'hot-api');
  await git.createRepo('web', { 'compose.yaml': 'services: {}\n' });
  const daemon = await startTestDaemon({ dirs, daemon: { watch: false } });
  t.after(() => daemon.close());
  await writeFile(
    path.join(dirs.configDir, 'api.yaml'),
    projectYaml('api', { web: { url: git.repoUrl('web'), extra: ['suspended: true'] } }),
  );
  assert.equal(daemon.supervisor.list().length, 0, 'nothing happens without a reload');
  const res = await fetch(`${daemon.url}/api/reload`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { added: string[]; errors: unknown[] };
  // The new file was not applied before this request (no watcher): the reload reports it as added.
  assert.deepEqual(body.added, ['api/web']);
  assert.deepEqual(body.errors, []);
  assert.equal(daemon.supervisor.get('api/web')?.state, 'suspended');
});

test('SIGHUP makes the daemon process re-read its project files', { timeout: 90_000 }, async (t) => {
  const git = await startGitServer();
  t.after(() => git.close());
  const dirs = await tempDirs(t, 'hot-hup');
  await git.createRepo('web', { 'compose.yaml': 'services: {}\n' });
  await writeFile(
    path.join(dirs.configDir, 'hup.yaml'),
    projectYaml('hup', { web: { url: git.repoUrl('web'), extra: ['suspended: true'] } }),
  );
  const d = await spawnDaemon({ ...dirs });
  t.after(() => d.kill('SIGKILL'));
  const applied = () => d.logs.filter((l) => l['msg'] === 'configuration applied').length;
  // A reload applied after the n-th "SIGHUP" log line: the daemon received the signal and then re-read the files.
  const reloadedAfterHup = (n: number) => {
    const hups = d.logs.flatMap((l, i) => (l['msg'] === 'SIGHUP: reloading configuration' ? [i] : []));
    const hup = hups[n - 1];
    return (
      hups.length === n && hup !== undefined && d.logs.slice(hup + 1).some((l) => l['msg'] === 'configuration applied')
    );
  };
  // The daemon reloads once when its watcher is ready (catch-up for edits during start-up); wait for that one.
  await until(() => applied() >= 1, 'the start-up catch-up reload', 15_000);
  // `serve` installs its SIGHUP handler once the daemon has started; before that, SIGHUP would end the process.
  await until(() => catches(d.pid, 'SIGHUP'), 'the SIGHUP handler', 15_000, 20);
  const before = applied();
  // No file changed, so the watcher has nothing to report: reloads from here on come from the signal.
  d.kill('SIGHUP');
  await until(() => reloadedAfterHup(1), 'a reload after SIGHUP', 15_000);
  d.kill('SIGHUP');
  await until(() => reloadedAfterHup(2), 'a second reload after SIGHUP', 15_000);
  assert.equal(applied(), before + 2, 'one reload per SIGHUP');
  const status = await d.api<{ state: string }>('/api/repositories/hup%2Fweb');
  assert.equal(status.status, 200);
  assert.equal(status.body.state, 'suspended', 'the daemon is still serving its repository');
  d.kill('SIGTERM');
  assert.equal((await d.exited()).code, 0);
});
