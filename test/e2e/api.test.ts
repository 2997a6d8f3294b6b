/**
 * @module The HTTP API over the REAL supervisor, store, git server and Docker engine (the unit tests in
 * test/unit/http cover every error case against fakes): read routes reflect live state and history, commands
 * change it, a signed GitHub webhook and a form-encoded Gitea one trigger a real check, container logs are served
 * for managed containers only, and Basic Auth guards everything but health and webhooks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  composeDown,
  removeProjectContainers,
  webServiceCompose,
  docker,
} from '../helpers/docker.ts';
import { countChecks, startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { lastSuccessfulDeployment } from '../helpers/store-queries.ts';

const KEY = 'apiproj/site';
const SECRET = 'hook-secret-123';
const AUTH = `Basic ${Buffer.from('admin:pw-for-tests').toString('base64')}`;

describe('HTTP API against the real daemon', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let project = '';
  let stray = '';
  const api = (p: string, init: RequestInit = {}) =>
    fetch(`${daemon!.url}${p}`, {
      ...init,
      headers: { authorization: AUTH, ...(init.headers as Record<string, string> | undefined) },
    });

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    const image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-api');
    await git.createRepo('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'a1' }) });
    daemon = await startTestDaemon({
      projects: {
        'apiproj.yaml': `project: apiproj
description: API test project
repositories:
  site:
    url: ${git.repoUrl('site')}
    check_interval: 3600
    compose_project: ${project}
    pull: never
    webhook_secret: ${SECRET}
    healthcheck: { timeout: 20 }
`,
      },
      env: { SHIPARR_AUTH_ENABLED: 'true', SHIPARR_AUTH_PASSWORD: 'pw-for-tests' },
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    if (project) {
      await composeDown(project);
      await removeProjectContainers(project);
    }
    if (stray) await docker(['rm', '-f', stray]);
    await git?.close();
  });

  test('read routes show config, live state and history from the real store', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => lastSuccessfulDeployment(daemon!.store, KEY), 'boot deployment', 60_000);
    const projects = (await (await api('/api/projects')).json()) as { name: string; repositories: number }[];
    assert.ok(projects.some((p) => p.name === 'apiproj' && p.repositories === 1));
    const proj = (await (await api('/api/projects/apiproj')).json()) as { name: string; description: string };
    assert.equal(proj.description, 'API test project');
    const repos = (await (await api('/api/projects/apiproj/repositories')).json()) as
      { id: number; key: string }[] | { items: { id: number; key: string }[] };
    const list = Array.isArray(repos) ? repos : repos.items;
    const id = list.find((r) => r.key === KEY)!.id;
    const repo = (await (await api(`/api/repositories/${id}`)).json()) as {
      state: string;
      lastDeployedCommit: string;
      nextCheckAt: string | null;
    };
    assert.equal(repo.lastDeployedCommit, git.head('site', 'main'));
    assert.equal(repo.state, 'idle');
    assert.ok(repo.nextCheckAt);
    const byKey = await api(`/api/repositories/${encodeURIComponent(KEY)}`);
    assert.equal(byKey.status, 200);
    const page = (await (await api(`/api/repositories/${id}/deployments?limit=5`)).json()) as {
      items: { id: number; status: string }[];
      nextBefore: number | null;
    };
    assert.equal(page.items[0]?.status, 'success');
    const dep = await api(`/api/deployments/${page.items[0]!.id}`);
    assert.equal(dep.status, 200);
    const logs = await api(`/api/deployments/${page.items[0]!.id}/logs`);
    assert.match(logs.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(await logs.text(), /applying: docker compose up -d/);
    assert.equal((await api('/api/deployments/999999')).status, 404);
    const dashy = (await (await api('/widget/dashy?project=apiproj')).json()) as { widgets: unknown[] };
    assert.ok(Array.isArray(dashy.widgets) && dashy.widgets.length > 0);
    const metrics = await (await api('/metrics')).text();
    assert.match(metrics, /shiparr_deployments_total\{[^}]*status="success"[^}]*\} 1/);
  });

  test('suspend and resume change the live state and persist; deploy while suspended is 409', async (t) => {
    if (!(await requireDocker(t))) return;
    const id = daemon!.supervisor.get(KEY)!.id;
    const s = (await (
      await api(`/api/repositories/${id}/suspend`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } })
    ).json()) as {
      suspended: boolean;
      state: string;
    };
    assert.equal(s.suspended, true);
    assert.equal(daemon!.store.getRepository(KEY)?.suspended, true);
    assert.equal(
      ((await api(`/api/repositories/${id}`).then((r) => r.json())) as { state: string }).state,
      'suspended',
    );
    const d = await api(`/api/repositories/${id}/deploy`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } });
    assert.equal(d.status, 409);
    assert.equal(((await d.json()) as { error: { code: string } }).error.code, 'CONFLICT');
    const r = (await (
      await api(`/api/repositories/${id}/resume`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } })
    ).json()) as {
      suspended: boolean;
    };
    assert.equal(r.suspended, false);
    assert.equal(daemon!.store.getRepository(KEY)?.suspended, false);
  });

  test('a signed GitHub push webhook triggers a real check that deploys the new commit; a bad signature does not', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle', 30_000);
    const image = await ensureBusyboxImage();
    const sha = await git.commit('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'a2' }) });
    const body = JSON.stringify({
      ref: 'refs/heads/main',
      after: sha,
      repository: { clone_url: git.repoUrl('site'), html_url: git.repoUrl('site').replace(/\.git$/, '') },
    });
    const sig = (secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    // check_interval is an hour: every check counted from here on comes from a webhook.
    const checks = countChecks(daemon!.supervisor, KEY);
    t.after(() => checks.stop());
    const bad = await fetch(`${daemon!.url}/api/webhooks/github`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': sig('wrong') },
    });
    assert.equal(bad.status, 401);
    // An accepted webhook starts its check before it answers (the actor leaves idle at once): none was started.
    assert.equal(daemon!.supervisor.get(KEY)?.state, 'idle', 'no check from a bad signature');
    const ok = await fetch(`${daemon!.url}/api/webhooks/github`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': sig(SECRET) },
    });
    assert.equal(ok.status, 202);
    assert.deepEqual(((await ok.json()) as { matched: string[] }).matched, [KEY]);
    const d = await until(
      () =>
        daemon!.store.listDeployments(KEY, { limit: 10 }).items.find((x) => x.commit === sha && x.status === 'success'),
      'webhook deploy',
      60_000,
    );
    assert.equal(d.trigger, 'webhook');
    assert.equal(d.triggeredBy, 'webhook:github', 'the audit trail names the provider');
    assert.equal(checks.count, 1, "one check: the signed webhook's, none from the bad one");
    assert.equal(
      daemon!.store.listDeployments(KEY, { limit: 10 }).items.filter((x) => x.commit === sha).length,
      1,
      'one deployment of the pushed commit',
    );
  });

  test('a Gitea form-encoded push, signed over its JSON payload as Gitea does, triggers a real check that deploys', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle', 30_000);
    const image = await ensureBusyboxImage();
    const sha = await git.commit('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'a3' }) });
    // Gitea: json.MarshalIndent payload, HMAC over it, body = url.Values{"payload": {json}}.Encode() (url.QueryEscape).
    const json = JSON.stringify(
      {
        ref: 'refs/heads/main',
        after: sha,
        repository: { clone_url: git.repoUrl('site'), html_url: git.repoUrl('site').replace(/\.git$/, '') },
      },
      null,
      2,
    );
    const goQueryEscape = (s: string) =>
      [...Buffer.from(s, 'utf8')]
        .map((b) =>
          /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b))
            ? String.fromCharCode(b)
            : b === 0x20
              ? '+'
              : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
        )
        .join('');
    const body = `payload=${goQueryEscape(json)}`;
    const headers = (secret: string) => {
      const sig = createHmac('sha256', secret).update(json).digest('hex');
      return {
        'content-type': 'application/x-www-form-urlencoded',
        'x-gitea-event': 'push',
        'x-gitea-event-type': 'push',
        'x-gitea-signature': sig,
        'x-gogs-event': 'push',
        'x-gogs-signature': sig,
        'x-hub-signature-256': `sha256=${sig}`,
        'x-github-event': 'push',
      };
    };
    const bad = await fetch(`${daemon!.url}/api/webhooks/gitea`, { method: 'POST', body, headers: headers('wrong') });
    assert.equal(bad.status, 401);
    const ok = await fetch(`${daemon!.url}/api/webhooks/gitea`, { method: 'POST', body, headers: headers(SECRET) });
    assert.equal(ok.status, 202);
    assert.deepEqual(((await ok.json()) as { matched: string[] }).matched, [KEY]);
    const d = await until(
      () =>
        daemon!.store.listDeployments(KEY, { limit: 10 }).items.find((x) => x.commit === sha && x.status === 'success'),
      'gitea webhook deploy',
      60_000,
    );
    assert.equal(d.trigger, 'webhook');
    assert.equal(d.triggeredBy, 'webhook:gitea');
  });

  test('container logs: served for a managed container, 404 for any other', async (t) => {
    if (!(await requireDocker(t))) return;
    const managed = (
      await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`])
    ).stdout.trim();
    assert.ok(managed);
    const r = await api(`/containers/${managed}/logs?tail=50`);
    assert.equal(r.status, 200);
    const image = await ensureBusyboxImage();
    stray = (await docker(['run', '-d', '--rm', image, 'sh', '-c', 'echo stray-output; sleep 60'])).stdout.trim();
    assert.equal((await api(`/containers/${stray}/logs?tail=10`)).status, 404);
    assert.equal((await api('/containers/does-not-exist/logs')).status, 404);
  });

  test('auth: protected routes answer 401 with WWW-Authenticate without credentials; health and webhooks stay open', async (t) => {
    if (!(await requireDocker(t))) return;
    for (const p of [
      '/api/projects',
      '/api/repositories',
      `/api/repositories/${encodeURIComponent(KEY)}`,
      '/metrics',
      '/widget/dashy?project=apiproj',
      '/',
    ]) {
      const r = await fetch(`${daemon!.url}${p}`);
      assert.equal(r.status, 401, p);
      assert.match(r.headers.get('www-authenticate') ?? '', /Basic/);
    }
    assert.equal((await fetch(`${daemon!.url}/api/health`)).status, 200);
    const ping = await fetch(`${daemon!.url}/api/webhooks/github`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping' },
    });
    assert.equal(ping.status, 200);
  });

  test('POST /api/reload re-reads the project files', async (t) => {
    if (!(await requireDocker(t))) return;
    await daemon!.writeProject('broken.yaml', 'project: [oops\n');
    const r = (await (await api('/api/reload', { method: 'POST', headers: { 'X-Shiparr-Request': '1' } })).json()) as {
      errors: { file: string }[];
    };
    assert.ok(r.errors.some((e) => e.file.endsWith('broken.yaml')));
    const health = (await (await fetch(`${daemon!.url}/api/health`)).json()) as { config: { ok: boolean } };
    assert.equal(health.config.ok, false);
    assert.ok(daemon!.supervisor.get(KEY), 'other projects untouched');
  });
});
