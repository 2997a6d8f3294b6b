/**
 * @module End to end: deploy results posted as commit statuses to fake GitHub, Gitea and GitLab forges (each serving
 * the documented endpoint and the repository's git traffic) by one real daemon deploying four repositories at once:
 * exact request sequences and bodies, auth headers, GitLab's encoded project id, a rollback with the pinned note, a
 * a forge answering 500 for a minute that neither delays the deploy nor loses the status, and
 * no token in logs, API answers or the database.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  BUSYBOX_IMAGE,
  composeDown,
  dockerAvailable,
  ensureBusyboxImage,
  removeProjectContainers,
  requireDocker,
  uniqueProjectName,
} from '../helpers/docker.ts';
import { buildUi } from '../../scripts/build-ui.ts';
import { axeViolations, launchChromium, requireChromium, watchPage } from '../helpers/browser.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startFakeForge, type FakeForge, type ForgeRequest } from '../helpers/fake-forge.ts';
import { registerTestSecrets, saveArtifact } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { createLogger } from '../../src/logger.ts';
import type { CommitStatusRecord, Deployment } from '../../src/domain/types.ts';

const PUBLIC_URL = 'https://shiparr.example.test';
const GH_TOKEN = 'ghStatusToken-e2e-5f1c2a';
const GITEA_TOKEN = 'giteaRepoToken-e2e-77b3';
const GITLAB_TOKEN = 'glpat-e2eToken-91ad0c';
const SLOW_TOKEN = 'slowForgeToken-e2e-3c3c';
const TOKENS = [GH_TOKEN, GITEA_TOKEN, GITLAB_TOKEN, SLOW_TOKEN];
/** How long the slow forge answers 500, from the first status it gets (and until its deployment has finished). */
const OUTAGE_MS = 60_000;

/** A busybox httpd without a healthcheck: running is ready, so a loaded engine cannot fail a good deploy. */
const steadyCompose = (marker: string) =>
  [
    'services:',
    '  web:',
    `    image: ${JSON.stringify(BUSYBOX_IMAGE)}`,
    '    pull_policy: never',
    '    init: true',
    '    command: ["sh", "-c", "exec httpd -f -p 80 -h /www"]',
    '    labels:',
    `      shiparr.test.marker: ${JSON.stringify(marker)}`,
    '',
  ].join('\n');

const exitingCompose = [
  'services:',
  '  web:',
  `    image: ${JSON.stringify(BUSYBOX_IMAGE)}`,
  '    pull_policy: never',
  '    init: true',
  '    command: ["sh", "-c", "exit 3"]',
  '',
].join('\n');

describe('commit statuses end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let github: FakeForge;
  let gitea: FakeForge;
  let gitlab: FakeForge;
  let slow: FakeForge;
  let outage: ReturnType<FakeForge['outage']>;
  const projects: string[] = [];
  const captured: string[] = [];
  const shas: Record<string, string> = {};

  const rows = (key: string): Deployment[] => daemon!.store.listDeployments(key, { limit: 20 }).items;
  const done = (d: Deployment) => d.status !== 'pending' && d.status !== 'running';
  const statusPosts = (f: FakeForge, pathPart: string) => f.requests.filter((r) => r.path.includes(pathPart));
  const records = (key: string, id: number): CommitStatusRecord[] =>
    daemon!.store.getDeployment(id)?.commitStatuses ?? [];

  before(async () => {
    git = await startGitServer();
    registerTestSecrets('commit status tokens', TOKENS);
    github = await startFakeForge('github', { tokens: [GH_TOKEN], git: git.baseUrl });
    gitea = await startFakeForge('gitea', { tokens: [GITEA_TOKEN], git: git.baseUrl });
    gitlab = await startFakeForge('gitlab', { tokens: [GITLAB_TOKEN], git: git.baseUrl });
    slow = await startFakeForge('github', { tokens: [SLOW_TOKEN], git: git.baseUrl });
    if (!(await dockerAvailable())) return;
    await ensureBusyboxImage();
    for (const name of ['gh', 'gt', 'gl', 'slow']) {
      shas[name] = await git.createRepo(name, {
        'compose.yaml': steadyCompose(`${name}-1`),
      });
      projects.push(uniqueProjectName(`e2e-cs-${name}`));
    }
    const log = createLogger({
      level: 'debug',
      format: 'json',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          captured.push(chunk.toString());
          cb();
        },
      }),
    });
    const repo = (name: string, i: number, url: string, extra: string) =>
      `  ${name}:
    url: ${url}
    check_interval: 1
    compose_project: ${projects[i]}
    pull: never
    healthcheck: { timeout: 90 }
${extra}`;
    outage = slow.outage(OUTAGE_MS);
    daemon = await startTestDaemon({
      env: {
        SHIPARR_PUBLIC_URL: `${PUBLIC_URL}/`,
        SHIPARR_MAX_CONCURRENT_DEPLOYS: '4',
        GH_STATUS_TOKEN: GH_TOKEN,
      },
      projects: {
        'forge.yaml': `project: forge
repositories:
${repo('gh', 0, `${github.url}/acme/gh.git`, `    commit_status: { provider: github, api_url: "${github.url}", token: "\${GH_STATUS_TOKEN}" }\n`)}
${repo('gt', 1, `${gitea.url}/acme/gt.git`, `    token: ${GITEA_TOKEN}\n    commit_status: { provider: gitea }\n`)}
${repo('gl', 2, `${gitlab.url}/group/sub/gl.git`, `    token: ${GITLAB_TOKEN}\n    commit_status: { provider: gitlab, api_url: "${gitlab.url}", context: deploy/gl }\n`)}
${repo('slow', 3, `${slow.url}/acme/slow.git`, `    commit_status: { provider: github, api_url: "${slow.url}", token: ${SLOW_TOKEN} }\n`)}
`,
      },
      daemon: { log, commitStatusTiming: { baseDelayMs: 1_000, maxDelayMs: 8_000, maxAttempts: 40 } },
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    saveArtifact('commit-status-e2e.log', captured.join(''));
    for (const p of projects) {
      await composeDown(p);
      await removeProjectContainers(p);
    }
    await Promise.all([github, gitea, gitlab, slow].map((f) => f?.close()));
    await git?.close();
  });

  test('GitHub: pending then success, exact bodies, Bearer token, link to the deployment', async (t) => {
    if (!(await requireDocker(t))) return;
    const path = `/repos/acme/gh/statuses/${shas.gh}`;
    const posts = await until(
      () => (statusPosts(github, '/acme/gh/').length >= 2 ? statusPosts(github, '/acme/gh/') : null),
      'two GitHub statuses',
      180_000,
    );
    const d = rows('forge/gh').find((r) => r.commit === shas.gh)!;
    assert.equal(d.status, 'success');
    assert.deepEqual(
      posts.map((p) => [p.path, p.answered]),
      [
        [path, 201],
        [path, 201],
      ],
    );
    const target = `${PUBLIC_URL}/#/deployment/${d.id}`;
    assert.deepEqual(posts[0]?.body, {
      state: 'pending',
      target_url: target,
      description: `deploying ${shas.gh!.slice(0, 7)}`,
      context: 'shiparr/forge/gh',
    });
    assert.equal(posts[1]?.body?.state, 'success');
    assert.match(String(posts[1]?.body?.description), /^deployed in \d+ s$/);
    assert.deepEqual(Object.keys(posts[1]?.body ?? {}), ['state', 'target_url', 'description', 'context']);
    assert.equal(posts[1]?.body?.target_url, target);
    for (const p of posts) {
      assert.equal(p.headers.authorization, `Bearer ${GH_TOKEN}`);
      assert.equal(p.headers.accept, 'application/vnd.github+json');
      assert.equal(p.headers['content-type'], 'application/json');
    }
    // Recorded on the deployment and shown by the API.
    await until(() => records('forge/gh', d.id).find((r) => r.state === 'success')?.ok, 'the success recorded');
    const api = (await (await fetch(`${daemon!.url}/api/deployments/${d.id}`)).json()) as Deployment;
    const byState = new Map(api.commitStatuses?.map((r) => [r.state, r]));
    assert.equal(byState.get('pending')?.result, 'delivered');
    assert.equal(byState.get('success')?.result, 'delivered');
    assert.equal(byState.get('success')?.httpStatus, 201);
    assert.equal(byState.get('success')?.attempts, 1);
    assert.equal(byState.get('success')?.commit, shas.gh);
  });

  test('the deployment page shows its commit statuses (state, forge, delivery) with no serious axe violation', async (t) => {
    if (!(await requireDocker(t))) return;
    const exe = await requireChromium(t);
    if (!exe) return;
    const d = rows('forge/gh').find((r) => r.commit === shas.gh)!;
    await until(() => records('forge/gh', d.id).find((r) => r.state === 'success')?.ok, 'the success recorded');
    await buildUi();
    const browser = await launchChromium(exe);
    try {
      const p = await browser.newPage();
      const problems = watchPage(p);
      await p.goto(`${daemon!.url}/#/deployment/${d.id}`);
      await p.getByRole('heading', { level: 2, name: 'Commit statuses' }).waitFor({ timeout: 30_000 });
      const success = p.locator('tr[data-state="success"][data-result="delivered"]');
      await success.waitFor();
      assert.match(await success.innerText(), /github\s+shiparr\/forge\/gh/);
      assert.match(await success.innerText(), /deployed in \d+ s/);
      assert.match(await success.innerText(), /1 request, HTTP 201/);
      assert.equal(await p.locator('tr[data-state="pending"][data-result="delivered"]').count(), 1);
      assert.doesNotMatch(await p.content(), new RegExp(GH_TOKEN), 'no token in the page');
      assert.deepEqual(await axeViolations(p), []);
      assert.deepEqual(problems.csp, []);
      assert.deepEqual(problems.errors, []);
    } finally {
      await browser.close();
    }
  });

  test('GitLab: the URL-encoded project id, PRIVATE-TOKEN and GitLab state names (running → success)', async (t) => {
    if (!(await requireDocker(t))) return;
    const posts = await until(
      () => (gitlab.requests.length >= 2 ? gitlab.requests : null),
      'two GitLab statuses',
      180_000,
    );
    const d = rows('forge/gl').find((r) => r.commit === shas.gl)!;
    assert.deepEqual(
      posts.map((p) => [p.path, p.answered, p.body?.state, p.body?.name]),
      [
        [`/api/v4/projects/group%2Fsub%2Fgl/statuses/${shas.gl}`, 201, 'running', 'deploy/gl'],
        [`/api/v4/projects/group%2Fsub%2Fgl/statuses/${shas.gl}`, 201, 'success', 'deploy/gl'],
      ],
    );
    for (const p of posts) {
      assert.equal(p.headers['private-token'], GITLAB_TOKEN, 'the repository token is the default');
      assert.equal(p.headers.authorization, undefined);
      assert.equal(p.body?.target_url, `${PUBLIC_URL}/#/deployment/${d.id}`);
      assert.equal(p.body?.context, undefined, 'GitLab calls it name');
    }
    assert.equal(records('forge/gl', d.id).find((r) => r.state === 'pending')?.forgeState, 'running');
  });

  test('a forge answering 500 for a minute: the deploy finishes meanwhile, as fast as the others; the status arrives after recovery', async (t) => {
    if (!(await requireDocker(t))) return;
    // The forge fails from its first status on until this deployment has finished: a deploy that waited for the forge
    // could never finish here.
    const d = await until(() => rows('forge/slow').find(done), 'the slow-forge deployment', 180_000);
    outage.release();
    assert.equal(d.status, 'success');
    const finishedAt = Date.parse(d.finishedAt ?? '');
    assert.equal(outage.recoveredAt, null, 'the forge was still failing when the deployment finished');
    assert.ok(
      slow.requests.some((r) => r.answered === 500 && r.at <= finishedAt),
      'the forge was already failing before the deployment finished',
    );
    // As fast as without a failing forge: the deployments running beside it (same engine, same load) for comparison.
    const others = ['forge/gh', 'forge/gl'].map((k) => rows(k).find(done)?.durationMs ?? 0);
    assert.ok(
      (d.durationMs ?? Infinity) <= Math.max(...others) + 15_000,
      `slow-forge deploy took ${d.durationMs} ms; the others ${others.join(', ')} ms`,
    );
    const mid = records('forge/slow', d.id);
    assert.ok(
      mid.some((r) => r.result === 'retrying' || r.result === 'superseded'),
      `retries are recorded: ${JSON.stringify(mid)}`,
    );
    const delivered = await until(
      () => slow.requests.find((r) => r.answered === 201),
      'the status delivered after the outage',
      OUTAGE_MS + 60_000,
      250,
    );
    assert.ok(outage.recoveredAt !== null && delivered.at >= outage.recoveredAt);
    const firstFailure = slow.requests[0]!.at;
    assert.ok(delivered.at - firstFailure >= OUTAGE_MS, 'the forge failed for a whole minute first');
    assert.equal(delivered.body?.state, 'success', 'the newest state is what arrives; the old pending was dropped');
    assert.equal(slow.requests.filter((r) => r.answered === 201).length, 1);
    const rec = await until(
      () => records('forge/slow', d.id).find((r) => r.state === 'success' && r.ok),
      'the success recorded as delivered',
    );
    assert.ok(rec.attempts >= 2, `attempts recorded: ${rec.attempts}`);
    assert.equal(rec.lastError, null);
    assert.equal(records('forge/slow', d.id).find((r) => r.state === 'pending')?.result, 'superseded');
    assert.ok(slow.requests.every((r: ForgeRequest) => r.headers.authorization === `Bearer ${SLOW_TOKEN}`));
  });

  test('Gitea: a commit whose container exits fails, rolls back and is pinned: failure "rolled back to <sha>"', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => rows('forge/gt').find((r) => r.status === 'success'), 'the first Gitea deployment', 180_000);
    await until(() => gitea.requests.length >= 2, 'the first deployment statuses');
    const good = shas.gt!;
    const bad = await git.commit('gt', { 'compose.yaml': exitingCompose });
    const d = await until(
      () => rows('forge/gt').find((r) => r.commit === bad && done(r)),
      'the bad deployment',
      240_000,
    );
    assert.equal(d.status, 'rolled_back', `${d.error ?? ''}\n${daemon!.store.getDeploymentLogs(d.id) ?? ''}`);
    assert.equal(daemon!.store.getRepository('forge/gt')?.pinnedCommit, bad);
    const posts = await until(
      () => (statusPosts(gitea, bad).length >= 2 ? statusPosts(gitea, bad) : null),
      'the bad commit statuses',
    );
    const path = `/api/v1/repos/acme/gt/statuses/${bad}`;
    assert.deepEqual(
      posts.map((p) => [p.path, p.answered, p.body?.state]),
      [
        [path, 201, 'pending'],
        [path, 201, 'failure'],
      ],
    );
    const description = String(posts[1]?.body?.description);
    assert.match(
      description,
      new RegExp(
        `^failed at verifying \\([A-Z_]+\\); rolled back to ${good.slice(0, 7)}; pinned: not redeployed until a new commit or unpin$`,
      ),
    );
    assert.ok(description.length <= 140);
    assert.equal(posts[1]?.body?.context, 'shiparr/forge/gt');
    assert.equal(posts[1]?.body?.target_url, `${PUBLIC_URL}/#/deployment/${d.id}`);
    for (const p of gitea.requests) assert.equal(p.headers.authorization, `token ${GITEA_TOKEN}`);
    // The good commit got pending → success before.
    assert.deepEqual(
      statusPosts(gitea, good).map((p) => p.body?.state),
      ['pending', 'success'],
    );
  });

  test('no token appears in logs, API answers or the database', async (t) => {
    if (!(await requireDocker(t))) return;
    const list = daemon!.supervisor.list();
    const api: string[] = [];
    for (const r of list) {
      api.push(await (await fetch(`${daemon!.url}/api/repositories/${r.id}`)).text());
      api.push(await (await fetch(`${daemon!.url}/api/repositories/${r.id}/deployments`)).text());
    }
    const db = JSON.stringify([
      daemon!.store.db.prepare('SELECT * FROM deployments').all(),
      daemon!.store.db.prepare('SELECT * FROM repositories').all(),
    ]);
    assert.ok(db.includes('commit_statuses') && db.includes('"delivered'), 'statuses are in the database');
    const everything = `${api.join('\n')}\n${captured.join('')}\n${db}`;
    assert.ok(captured.length > 10, 'logs were captured');
    for (const secret of TOKENS) assert.ok(!everything.includes(secret), `a token leaked (${secret.slice(0, 6)}…)`);
  });
});
