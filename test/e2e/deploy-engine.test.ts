/**
 * @module End to end: the real daemon against a real git server (smart HTTP on loopback) and the real Docker
 * engine — boot deploy, quiet polls, new commits, rollback with pinning, invalid compose, git outage with
 * backoff, coalesced deploys, forced redeploys, and the one-shot CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
  docker,
  MARKER_LABEL,
} from '../helpers/docker.ts';
import { checksCompleted, startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { disposeE2e, e2eRepoYaml, readSse, useComposeWrapper, type ComposeWrapper } from '../helpers/e2e.ts';

const execFileAsync = promisify(execFile);
const KEY = 'e2e/web';

describe('deploy engine end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let image = '';
  let project = '';
  let tmp = '';
  let wrapper: ComposeWrapper | undefined;
  let haveDocker = false;
  const shas: Record<string, string> = {};

  const projectYaml = () =>
    `project: e2e\nrepositories:\n${e2eRepoYaml('web', { url: git.repoUrl('web'), composeProject: project })}`;
  const rows = () => daemon!.store.listDeployments(KEY, { limit: 100 }).items;
  const markers = async () =>
    (
      await docker([
        'ps',
        '--filter',
        `label=com.docker.compose.project=${project}`,
        '--format',
        `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
      ])
    ).stdout.trim();
  const composeRuns = () => wrapper!.ups();

  before(async () => {
    haveDocker = await dockerAvailable();
    git = await startGitServer();
    if (!haveDocker) return;
    image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-engine');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-engine-'));
    wrapper = await useComposeWrapper(tmp);
    shas.v1 = await git.createRepo('web', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }),
    });
    daemon = await startTestDaemon({ projects: { 'e2e.yaml': projectYaml() } });
  });

  after(() => disposeE2e({ daemon, wrapper, projects: [project], git, tmp }));

  test('a repository is cloned and deployed at boot; the row is success with the commit; containers run', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await until(() => rows().find((r) => r.status === 'success'), 'the boot deployment', 60_000);
    assert.equal(d.commit, shas.v1);
    assert.equal(d.trigger, 'boot');
    assert.equal(await markers(), 'v1 running');
    const status = daemon!.supervisor.get(KEY);
    assert.equal(status?.lastDeployedCommit, shas.v1);
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(logs, /pulling: checked out/);
    assert.match(logs, /applying: docker compose up -d/);
    assert.match(logs, /verifying: 1 container/);
  });

  test('no new commit: polls create no deployment rows and run no compose command', async (t) => {
    if (!(await requireDocker(t))) return;
    const before = rows().length;
    const runs = await composeRuns();
    const checkedBefore = daemon!.store.getRepository(KEY)?.lastCheckedAt;
    await checksCompleted(daemon!.supervisor, KEY, 2);
    assert.equal(rows().length, before);
    assert.equal(await composeRuns(), runs);
    assert.notEqual(daemon!.store.getRepository(KEY)?.lastCheckedAt, checkedBefore, 'the repository was polled');
  });

  test('a pushed commit changing the compose file is deployed within a poll interval', async (t) => {
    if (!(await requireDocker(t))) return;
    shas.v2 = await git.commit('web', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v2' }) });
    const d = await until(
      () => rows().find((r) => r.commit === shas.v2 && r.status === 'success'),
      'the v2 deployment',
      60_000,
    );
    assert.equal(d.trigger, 'poll');
    assert.equal(d.previousCommit, shas.v1);
    assert.equal(await markers(), 'v2 running');
  });

  test('a commit that never gets healthy is rolled back and pinned; a newer good commit deploys', async (t) => {
    if (!(await requireDocker(t))) return;
    shas.bad = await git.commit('web', { 'compose.yaml': webServiceCompose({ image, healthy: false, marker: 'bad' }) });
    const d = await until(
      () => rows().find((r) => r.commit === shas.bad && r.status !== 'running' && r.status !== 'pending'),
      'the bad deployment',
      90_000,
    );
    assert.equal(d.status, 'rolled_back');
    assert.equal(d.stage, 'verifying');
    assert.equal(d.rolledBackTo, shas.v2);
    assert.match(d.error ?? '', /unhealthy|health/i);
    await until(async () => (await markers()) === 'v2 running', 'v2 containers back', 30_000);
    assert.equal(daemon!.supervisor.get(KEY)?.pinnedCommit, shas.bad);
    assert.equal(daemon!.store.getRepository(KEY)?.pinnedCommit, shas.bad);

    const count = rows().length;
    await checksCompleted(daemon!.supervisor, KEY, 2);
    assert.equal(rows().length, count, 'the pinned commit is not retried by later polls');

    shas.v3 = await git.commit('web', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v3' }) });
    await until(() => rows().find((r) => r.commit === shas.v3 && r.status === 'success'), 'the v3 deployment', 60_000);
    assert.equal(await markers(), 'v3 running');
    assert.equal(daemon!.supervisor.get(KEY)?.pinnedCommit, null);
  });

  test("an invalid compose file fails at applying with compose's error text; the previous deployment keeps running", async (t) => {
    if (!(await requireDocker(t))) return;
    shas.invalid = await git.commit('web', {
      'compose.yaml': 'services:\n  web:\n    image: 42\n    no_such_key: true\n',
    });
    const d = await until(
      () => rows().find((r) => r.commit === shas.invalid && r.status !== 'running' && r.status !== 'pending'),
      'the invalid deployment',
      60_000,
    );
    assert.ok(['failed', 'rolled_back'].includes(d.status), d.status);
    assert.equal(d.stage, 'applying');
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(`${d.error}\n${logs}`, /no_such_key|additional propert|must be a string/i);
    assert.equal(await markers(), 'v3 running');
  });

  test('the git server answering 503: no crash, backoff visible, recovery when it returns', async (t) => {
    if (!(await requireDocker(t))) return;
    shas.v4 = await git.commit('web', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v4' }) });
    git.setUnavailable(503);
    try {
      const s = await until(
        () => {
          const st = daemon!.supervisor.get(KEY);
          return st && st.attempt >= 2 && st.state === 'backoff' ? st : null;
        },
        'backoff state',
        30_000,
      );
      assert.equal(s.lastError?.stage, 'checking');
      assert.equal(s.lastError?.code, 'GIT_UNREACHABLE');
      assert.ok(s.nextCheckAt, 'next check is scheduled');
    } finally {
      git.setUnavailable(null);
    }
    await until(
      () => rows().find((r) => r.commit === shas.v4 && r.status === 'success'),
      'deploy after recovery',
      60_000,
    );
    const st = daemon!.supervisor.get(KEY);
    assert.equal(st?.attempt, 0);
    assert.equal(st?.lastError, null);
  });

  test('two deploy requests while busy give exactly one extra deployment', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle', 30_000);
    const before = rows().length;
    const first = daemon!.supervisor.deploy(KEY, { trigger: 'api' });
    await until(
      () => daemon!.supervisor.get(KEY)?.busy && daemon!.supervisor.get(KEY)?.state !== 'checking',
      'busy',
      30_000,
      5,
    );
    const second = daemon!.supervisor.deploy(KEY, { trigger: 'api' });
    const third = daemon!.supervisor.deploy(KEY, { trigger: 'api' });
    assert.equal(second.deploymentId, third.deploymentId, 'requests while busy coalesce');
    assert.notEqual(first.deploymentId, second.deploymentId);
    const d2 = await daemon!.supervisor.waitForDeployment(second.deploymentId, 90_000);
    assert.equal(d2?.status, 'success');
    assert.equal((await daemon!.supervisor.waitForDeployment(first.deploymentId, 1_000))?.status, 'success');
    // No third deployment: not from the coalesced requests, not from the polls that follow.
    await checksCompleted(daemon!.supervisor, KEY, 2);
    assert.equal(rows().length, before + 2);
  });

  test('a forced deploy of an unchanged commit redeploys it', async (t) => {
    if (!(await requireDocker(t))) return;
    const runs = await composeRuns();
    const { deploymentId } = daemon!.supervisor.deploy(KEY, { trigger: 'api' });
    const d = await daemon!.supervisor.waitForDeployment(deploymentId, 90_000);
    assert.equal(d?.status, 'success');
    assert.equal(d?.commit, shas.v4);
    assert.equal(await composeRuns(), runs + 1);
  });

  test('POST /api/repositories/:id/deploy?wait=true deploys for real; an SSE client sees the state sequence', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle', 30_000);
    const id = daemon!.supervisor.get(KEY)!.id;
    const sse = new AbortController();
    const events: {
      type: string;
      data: { repoKey?: string; state?: string; deploymentId?: number; status?: string };
    }[] = [];
    let connected = false;
    const res = await fetch(`${daemon!.url}/api/events`, { signal: sse.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reading = readSse(
      res.body,
      (f) => events.push({ type: f.type, data: f.data as (typeof events)[number]['data'] }),
      () => (connected = true),
    );
    // The stream's opening comment: from here on the client is subscribed and sees every event.
    await until(() => connected, 'the SSE stream to open', 10_000, 10);
    const r = await fetch(`${daemon!.url}/api/repositories/${id}/deploy?wait=true&timeout=120`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    const body = (await r.json()) as { deploymentId: number; status: string; commit: string };
    assert.equal(r.status, 200);
    assert.equal(body.status, 'success');
    assert.equal(body.commit, shas.v4);
    await until(
      () =>
        events.some(
          (e) =>
            e.type === 'state' &&
            e.data.repoKey === KEY &&
            e.data.state === 'idle' &&
            events.some((f) => f.type === 'deployment.finished'),
        ),
      'idle event',
      10_000,
    );
    sse.abort();
    await reading;
    const states = events.filter((e) => e.type === 'state' && e.data.repoKey === KEY).map((e) => e.data.state);
    assert.deepEqual(states, ['checking', 'pulling', 'planning', 'applying', 'verifying', 'notifying', 'idle']);
    const started = events.find((e) => e.type === 'deployment.started');
    const finished = events.find((e) => e.type === 'deployment.finished');
    assert.equal(started?.data.deploymentId, body.deploymentId);
    assert.equal(finished?.data.status, 'success');
  });

  test('POST /api/repositories/:id/rollback redeploys the previous successful commit and pins the current one', async (t) => {
    if (!(await requireDocker(t))) return;
    const id = daemon!.supervisor.get(KEY)!.id;
    const r = await fetch(`${daemon!.url}/api/repositories/${id}/rollback`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(r.status, 202);
    const { deploymentId } = (await r.json()) as { deploymentId: number };
    const d = await daemon!.supervisor.waitForDeployment(deploymentId, 90_000);
    assert.equal(d?.status, 'success');
    assert.equal(d?.commit, shas.v3);
    assert.equal(d?.trigger, 'rollback');
    assert.equal(await markers(), 'v3 running');
    assert.equal(daemon!.supervisor.get(KEY)?.pinnedCommit, shas.v4);
    const count = rows().length;
    await checksCompleted(daemon!.supervisor, KEY, 2);
    assert.equal(rows().length, count, 'polls do not undo the manual rollback');
  });

  test('`shiparr deploy <project>/<repo>` runs one deploy through the same pipeline and exits 0', async (t) => {
    if (!(await requireDocker(t))) return;
    const { configDir, dataDir } = daemon!;
    await daemon!.close();
    const env = {
      ...process.env,
      SHIPARR_CONFIG_PATH: configDir,
      SHIPARR_DATA_PATH: dataDir,
      SHIPARR_LOG_LEVEL: 'error',
    };
    const r = await execFileAsync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'deploy', KEY], {
      env,
      timeout: 120_000,
    });
    assert.match(r.stdout, /deployment #\d+ of e2e\/web/);
    // Who asked and why, printed before the stages.
    assert.match(r.stdout, /^asked by: cli(:\S+)?$/m);
    assert.match(r.stdout, /^why: forced deploy by cli(:\S+)? via cli$/m);
    assert.match(r.stdout, /pulling: checked out/);
    assert.match(r.stdout, /OK: success/);
    const bad = await execFileAsync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'deploy', 'e2e/missing'], {
      env,
    }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 2);
    assert.match((bad as { stderr: string }).stderr, /not configured/);
  });
});
