/**
 * @module End to end: plans in the real daemon against a real git server and the real Docker engine. A README-only
 * commit finishes `skipped` without running compose (and is not retried by the next polls), a forced deploy still
 * applies, every applied deployment records its plan, GET /api/repositories/:id/plan of another commit never touches
 * the live checkout or the stack, and `shiparr plan` prints a table and `--json`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import { docker, dockerAvailable, ensureBusyboxImage, requireDocker, uniqueProjectName } from '../helpers/docker.ts';
import { checksCompleted, startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { disposeE2e, e2eRepoYaml, useComposeWrapper, type ComposeWrapper } from '../helpers/e2e.ts';

const execFileAsync = promisify(execFile);
const KEY = 'plan/app';
const SECRET = `plan-e2e-${randomBytes(8).toString('hex')}`;
const SECRET2 = `plan-e2e-${randomBytes(8).toString('hex')}`;
const HEADERS = { 'X-Shiparr-Request': '1' };

describe('plans end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let image = '';
  let project = '';
  let tmp = '';
  let wrapper: ComposeWrapper | undefined;
  const shas: Record<string, string> = {};

  const composeYaml = (token: string) =>
    [
      'services:',
      '  api:',
      `    image: ${image}`,
      '    pull_policy: never',
      '    init: true',
      '    command: ["sleep", "3600"]',
      '    environment:',
      `      API_TOKEN: ${JSON.stringify(token)}`,
      '  worker:',
      `    image: ${image}`,
      '    pull_policy: never',
      '    init: true',
      '    command: ["sleep", "3600"]',
      '',
    ].join('\n');
  const projectYaml = () =>
    `project: plan\nrepositories:\n${e2eRepoYaml('app', { url: git.repoUrl('app'), composeProject: project })}`;
  const rows = () => daemon!.store.listDeployments(KEY, { limit: 100 }).items;
  const composeUps = () => wrapper!.ups();
  const containers = async () => {
    const ps = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
    const ids = ps.stdout.trim().split('\n').filter(Boolean).sort();
    const started = await docker(['inspect', '--format', '{{.Id}} {{.State.StartedAt}}', ...ids]);
    return started.stdout.trim();
  };
  const api = (p: string, init: RequestInit = {}) =>
    fetch(`${daemon!.url}${p}`, { ...init, headers: { ...HEADERS, ...(init.headers ?? {}) } });

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    registerTestSecrets('plan e2e env values', [SECRET, SECRET2]);
    image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-plan');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-plan-'));
    wrapper = await useComposeWrapper(tmp);
    shas.v1 = await git.createRepo('app', { 'compose.yaml': composeYaml(SECRET), 'README.md': 'v1\n' });
    daemon = await startTestDaemon({ projects: { 'plan.yaml': projectYaml() } });
  });

  after(() => disposeE2e({ daemon, wrapper, projects: [project], git, tmp }));

  test('the boot deployment applies and records its plan (every service create)', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await until(() => rows().find((r) => r.status === 'success'), 'the boot deployment', 90_000);
    assert.deepEqual(
      d.plan?.map((s) => [s.service, s.action]),
      [
        ['api', 'create'],
        ['worker', 'create'],
      ],
    );
    assert.match(daemon!.store.getDeploymentLogs(d.id) ?? '', /planning: api create/);
  });

  test('a README-only commit: skipped, no compose up, containers untouched, the commit counts as deployed', async (t) => {
    if (!(await requireDocker(t))) return;
    const ups = await composeUps();
    const before = await containers();
    shas.readme = await git.commit('app', { 'README.md': 'v2\n' });
    const d = await until(
      () => rows().find((r) => r.commit === shas.readme && (r.status === 'skipped' || r.status === 'success')),
      'the deployment of the README commit',
      90_000,
    );
    assert.equal(d.status, 'skipped');
    assert.ok(d.plan?.every((s) => s.action === 'keep'));
    assert.match(daemon!.store.getDeploymentLogs(d.id) ?? '', /nothing to change: compose not run, deployment skipped/);
    assert.equal(await composeUps(), ups);
    assert.equal(await containers(), before);
    assert.equal(daemon!.supervisor.get(KEY)?.lastDeployedCommit, shas.readme);
    assert.equal(daemon!.store.getRepository(KEY)?.lastCommit, shas.readme);
    // The next polls see the commit as deployed: no new rows.
    const n = rows().length;
    await checksCompleted(daemon!.supervisor, KEY, 2);
    assert.equal(rows().length, n);
  });

  test('a forced API deploy of the same commit applies anyway', async (t) => {
    if (!(await requireDocker(t))) return;
    const ups = await composeUps();
    const r = await api(`/api/repositories/${encodeURIComponent(KEY)}/deploy?wait=true&timeout=120`, {
      method: 'POST',
    });
    assert.equal(r.status, 200, await r.clone().text());
    const body = (await r.json()) as { status: string; id: number };
    assert.equal(body.status, 'success');
    assert.equal(await composeUps(), ups + 1);
    assert.match(daemon!.store.getDeploymentLogs(body.id) ?? '', /a forced deploy applies anyway/);
  });

  test('GET /plan of another commit: api recreate (env key only), worker keep; live checkout and stack untouched', async (t) => {
    if (!(await requireDocker(t))) return;
    const id = encodeURIComponent(KEY);
    assert.equal((await api(`/api/repositories/${id}/suspend`, { method: 'POST' })).status, 200);
    shas.env = await git.commit('app', { 'compose.yaml': composeYaml(SECRET2) });
    const checkout = daemon!.supervisor.repoConfig(KEY)!.localPath;
    const snapshot = async () => {
      const files = (await readdir(checkout)).sort();
      const content = await readFile(path.join(checkout, 'compose.yaml'), 'utf8');
      return {
        files,
        content,
        mtime: (await stat(checkout)).mtimeMs,
        head: await readFile(path.join(checkout, '.git/HEAD'), 'utf8'),
      };
    };
    const before = await snapshot();
    const stack = await containers();
    const ups = await composeUps();

    const r = await api(`/api/repositories/${id}/plan`);
    const text = await r.text();
    assert.equal(r.status, 200, text);
    assert.doesNotMatch(text, new RegExp(`${SECRET}|${SECRET2}`));
    const plan = JSON.parse(text) as {
      commit: string;
      noop: boolean;
      services: { service: string; action: string; reasons: string[] }[];
    };
    assert.equal(plan.commit, shas.env);
    assert.equal(plan.noop, false);
    assert.deepEqual(plan.services, [
      { service: 'api', action: 'recreate', reasons: ['env changed (API_TOKEN)'] },
      { service: 'worker', action: 'keep', reasons: [] },
    ]);
    // An older commit (the deployed stack's definition): nothing to change.
    const old = (await (await api(`/api/repositories/${id}/plan?commit=${shas.v1}`)).json()) as { noop: boolean };
    assert.equal(old.noop, true);

    assert.deepEqual(await snapshot(), before);
    assert.equal(await containers(), stack);
    assert.equal(await composeUps(), ups);
    assert.deepEqual(await readdir(path.join(daemon!.dataDir, 'scratch')), []);

    assert.equal((await api(`/api/repositories/${id}/plan?commit=xyz`)).status, 400);
    assert.equal((await api(`/api/repositories/nope%2Fnope/plan`)).status, 404);
    const missing = await api(`/api/repositories/${id}/plan?commit=${'d'.repeat(40)}`);
    assert.equal(missing.status, 409, await missing.clone().text());
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'GIT_COMMIT_NOT_FOUND');
  });

  test('shiparr plan prints a table, and the API shape with --json', async (t) => {
    if (!(await requireDocker(t))) return;
    const env = {
      ...process.env,
      SHIPARR_CONFIG_PATH: daemon!.configDir,
      SHIPARR_DATA_PATH: daemon!.dataDir,
      SHIPARR_LOG_LEVEL: 'warn',
    };
    const cli = (args: string[]) =>
      execFileAsync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'plan', KEY, ...args], {
        env,
        timeout: 120_000,
      });
    const table = await cli([]);
    assert.match(table.stdout, /^SERVICE\s+ACTION\s+REASONS$/m);
    assert.match(table.stdout, /^api\s+recreate\s+env changed \(API_TOKEN\)$/m);
    assert.match(table.stdout, /^worker\s+keep\s+-$/m);
    assert.match(table.stdout, /1 of 2 service\(s\) would change/);
    const json = JSON.parse((await cli(['--json', `--commit=${shas.v1}`])).stdout) as { commit: string; noop: boolean };
    assert.equal(json.commit, shas.v1);
    assert.equal(json.noop, true);
    assert.doesNotMatch(table.stdout, new RegExp(`${SECRET}|${SECRET2}`));
  });
});
