/**
 * @module Authentication and the audit trail against the REAL daemon, store, git server and Docker engine: a form
 * POST with valid Basic credentials deploys nothing (no deployment row), a deploy with an API token is recorded as
 * `token:<name>` on the row, in the API and in the deploy log, and the token value appears nowhere (API, log, DB file).
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { countDeployments, lastSuccessfulDeployment } from '../helpers/store-queries.ts';
import { until } from '../helpers/wait.ts';
import { disposeE2e } from '../helpers/e2e.ts';

const KEY = 'secproj/site';
const TOKEN = 'ci-token-0123456789abcdef0123456789abcdef';
const BASIC = `Basic ${Buffer.from('admin:pw-for-audit').toString('base64')}`;

describe('audit trail and CSRF against the real daemon', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let project = '';

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-sec');
    await git.createRepo('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 's1' }) });
    daemon = await startTestDaemon({
      projects: {
        'secproj.yaml': `project: secproj
repositories:
  site:
    url: ${git.repoUrl('site')}
    check_interval: 3600
    compose_project: ${project}
    pull: never
    healthcheck: { timeout: 20 }
`,
      },
      env: { SHIPARR_AUTH_MODE: 'basic', SHIPARR_AUTH_PASSWORD: 'pw-for-audit', SHIPARR_API_TOKENS: `ci:${TOKEN}` },
    });
  });

  let image = '';

  after(() => disposeE2e({ daemon, projects: [project], git }));

  test('a form POST with valid Basic credentials is 415 and opens no deployment', async (t) => {
    if (!(await requireDocker(t))) return;
    const boot = await until(() => lastSuccessfulDeployment(daemon!.store, KEY), 'boot deployment', 60_000);
    assert.equal(boot.triggeredBy, null, 'the boot deployment names nobody');
    const rows = countDeployments(daemon!.store, KEY);
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'commit=0123456'],
      ['text/plain', '{}'],
    ] as const) {
      const r = await fetch(`${daemon!.url}/api/repositories/${encodeURIComponent(KEY)}/deploy`, {
        method: 'POST',
        headers: { authorization: BASIC, 'content-type': type },
        body,
      });
      assert.equal(r.status, 415, type);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'UNSUPPORTED_MEDIA_TYPE');
    }
    const cross = await fetch(`${daemon!.url}/api/repositories/${encodeURIComponent(KEY)}/deploy`, {
      method: 'POST',
      headers: { authorization: BASIC, 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(cross.status, 403);
    assert.equal(countDeployments(daemon!.store, KEY), rows, 'no deployment row was created');
    assert.equal(daemon!.supervisor.get(KEY)?.state, 'idle');
  });

  test('a deploy with an API token is recorded as token:ci, never with the token', async (t) => {
    if (!(await requireDocker(t))) return;
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const r = await fetch(`${daemon!.url}/api/repositories/${encodeURIComponent(KEY)}/deploy?wait=true&timeout=120`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
    });
    const answer = await r.text();
    assert.equal(r.status, 200, answer);
    const { deploymentId, status } = JSON.parse(answer) as { deploymentId: number; status: string };
    assert.equal(status, 'success');
    const shown = await (await fetch(`${daemon!.url}/api/deployments/${deploymentId}`, { headers: bearer })).text();
    assert.equal((JSON.parse(shown) as { triggeredBy: string }).triggeredBy, 'token:ci');
    assert.equal(daemon!.store.getDeployment(deploymentId)?.triggeredBy, 'token:ci');
    const page = await (
      await fetch(`${daemon!.url}/api/repositories/${encodeURIComponent(KEY)}/deployments?limit=1`, {
        headers: { authorization: BASIC },
      })
    ).text();
    assert.match(page, /"triggeredBy":"token:ci"/);
    const log = await (await fetch(`${daemon!.url}/api/deployments/${deploymentId}/logs`, { headers: bearer })).text();
    assert.match(log, /\(trigger api by token:ci, forced\)/);

    // A Basic user is named as user:<name>.
    const byUser = await fetch(`${daemon!.url}/api/repositories/${encodeURIComponent(KEY)}/deploy`, {
      method: 'POST',
      headers: { authorization: BASIC, 'X-Shiparr-Request': '1' },
    });
    assert.equal(byUser.status, 202);
    const userRow = ((await byUser.json()) as { deploymentId: number }).deploymentId;
    assert.equal(daemon!.store.getDeployment(userRow)?.triggeredBy, 'user:admin');
    await until(
      () => !['pending', 'running'].includes(daemon!.store.getDeployment(userRow)?.status ?? 'pending'),
      'the user deployment to finish',
      120_000,
    );

    for (const text of [answer, shown, page, log]) assert.ok(!text.includes(TOKEN), 'no token in API answers or logs');
    // Nor in the database files (main file and write-ahead log).
    const dbFiles = (await readdir(daemon!.dataDir)).filter((f) => f.startsWith('shiparr.db'));
    let principalSeen = false;
    for (const f of dbFiles) {
      const bytes = await readFile(path.join(daemon!.dataDir, f));
      assert.equal(bytes.indexOf(TOKEN), -1, `token bytes in ${f}`);
      if (bytes.indexOf('token:ci') !== -1) principalSeen = true;
    }
    assert.ok(principalSeen, `the scanned files (${dbFiles.join(', ')}) hold the rows written`);
  });

  test('a check asked for with a principal (a webhook) records it on the run it starts; the next check does not inherit it', async (t) => {
    if (!(await requireDocker(t))) return;
    const finished = (id: number | undefined) =>
      id !== undefined && !['pending', 'running'].includes(daemon!.store.getDeployment(id)?.status ?? 'pending');
    const newRow = async (after: number, what: string) => {
      const row = await until(
        () => {
          const d = daemon!.store.latestDeployment(KEY);
          return d && d.id > after && finished(d.id) ? d : undefined;
        },
        what,
        120_000,
      );
      return row;
    };
    // The webhook route passes webhook:<provider>; the supervisor carries it to the row of the run the check starts.
    const before = daemon!.store.latestDeployment(KEY)?.id ?? 0;
    const sha = await git.commit('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 's2' }) });
    assert.equal(daemon!.supervisor.check(KEY, 'webhook', { triggeredBy: 'webhook:github' }), true);
    const hooked = await newRow(before, 'the webhook-started deployment');
    assert.equal(hooked.commit, sha);
    assert.equal(hooked.trigger, 'webhook');
    assert.equal(hooked.triggeredBy, 'webhook:github');
    assert.match(daemon!.store.getDeploymentLogs(hooked.id) ?? '', /\(trigger webhook by webhook:github\)/);

    const sha3 = await git.commit('site', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 's3' }),
    });
    assert.equal(daemon!.supervisor.check(KEY, 'api'), true);
    const anonymous = await newRow(hooked.id, 'the anonymous check deployment');
    assert.equal(anonymous.commit, sha3);
    assert.equal(anonymous.triggeredBy, null);
  });
});
