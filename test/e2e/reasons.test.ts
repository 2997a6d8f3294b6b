/**
 * @module End to end: why every deployment happened. A real daemon deploys a repository served over smart HTTP to the
 * real Docker engine: the boot check, two new commits (a `commits` reason with count 2 and both subjects), a forced
 * API deploy with a named token (`forced` by `token:ci`; its SSE `deployment.started` frame carries the reason and who
 * asked), a GitHub webhook (`webhook` with the delivery id and the new commit appended) and a manual rollback
 * (`rollback` with from/to, by whom and the deployment rolled back to). The notification bodies carry each summary.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  composeDown,
  dockerAvailable,
  ensureBusyboxImage,
  removeProjectContainers,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { readSse } from '../helpers/e2e.ts';
import { signatureHeaders } from '../../src/http/webhooks.ts';
import type { Deployment, DeploymentReason } from '../../src/domain/types.ts';

const KEY = 'why/app';
const TOKEN = 'ci:reasons-e2e-token-0123456789abcdefghij';
const BEARER = { authorization: `Bearer ${TOKEN.slice(3)}`, 'content-type': 'application/json' };
const HOOK_SECRET = 'reasons-webhook-secret-5f1e';
const DELIVERY = '72d3162e-cc78-11e3-81ab-4c9367dc0958';

describe('deployment reasons end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let receiver: Server;
  let project = '';
  let image = '';
  let repoId = 0;
  const bodies: string[] = [];
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const sse = new AbortController();

  const rows = (): Deployment[] => daemon!.store.listDeployments(KEY, { limit: 50 }).items;
  const finished = (id: number): Promise<Deployment> =>
    until(
      () => {
        const d = daemon!.store.getDeployment(id);
        return d && d.status !== 'pending' && d.status !== 'running' ? d : undefined;
      },
      `deployment ${id} to finish`,
      120_000,
    );
  const compose = (marker: string) => webServiceCompose({ image, healthy: true, marker });

  before(async () => {
    git = await startGitServer();
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        res.end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-reasons');
    await git.createRepo('app', { 'compose.yaml': compose('r0') }, { message: 'Initial' });
    registerTestSecrets('reasons e2e', [TOKEN, HOOK_SECRET]);
    daemon = await startTestDaemon({
      env: { SHIPARR_API_TOKENS: TOKEN },
      projects: {
        'why.yaml': `project: why
repositories:
  app:
    url: ${git.repoUrl('app')}
    check_interval: 3600
    shallow: false
    compose_project: ${project}
    pull: never
    webhook_secret: ${HOOK_SECRET}
    healthcheck: { timeout: 30 }
    notifications:
      success: [generic+http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notify]
`,
      },
    });
    repoId = daemon.supervisor.get(KEY)!.id;
    // The event stream, open before the commands below: their deployment.started frames are read from it.
    const res = await fetch(`${daemon.url}/api/events`, { headers: BEARER, signal: sse.signal });
    assert.equal(res.status, 200);
    void readSse(res.body, (f) => events.push({ type: f.type, data: f.data }));
  });

  after(async () => {
    sse.abort();
    await daemon?.dispose().catch(() => undefined);
    if (project) {
      await composeDown(project);
      await removeProjectContainers(project);
    }
    await git?.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  });

  test('the boot deployment has a reason from the moment its row exists', async (t) => {
    if (!(await requireDocker(t))) return;
    const first = await until(() => rows().at(-1), 'the boot deployment row', 60_000);
    assert.equal(first.trigger, 'boot');
    assert.equal(first.reason?.kind, 'boot');
    assert.ok(first.reason?.summary, 'non-empty summary at creation');
    const done = await finished(first.id);
    assert.equal(done.status, 'success', done.error ?? '');
  });

  test('two new commits: a commits reason with count 2 and both subjects, in the API and the notification', async (t) => {
    if (!(await requireDocker(t))) return;
    const before = daemon!.store.getRepository(KEY)!.lastCommit;
    // Suspended while the two commits land, resumed to check once: one deployment sees both.
    const post = (p: string) => fetch(`${daemon!.url}${p}`, { method: 'POST', headers: BEARER });
    assert.equal((await post(`/api/repositories/${repoId}/suspend`)).status, 200);
    await git.commit('app', { 'compose.yaml': compose('r1') }, { message: 'Fix login' });
    const head = await git.commit('app', { 'compose.yaml': compose('r2') }, { message: 'Bump db\n\nlonger body' });
    await until(() => daemon!.supervisor.get(KEY)?.suspended, 'suspended', 30_000);
    assert.equal((await post(`/api/repositories/${repoId}/resume`)).status, 200);
    const row = await until(() => rows().find((d) => d.commit === head), 'the deployment of the new head', 60_000);
    const done = await finished(row.id);
    assert.equal(done.status, 'success', done.error ?? '');
    const api = (await (await fetch(`${daemon!.url}/api/deployments/${row.id}`, { headers: BEARER })).json()) as {
      reason: DeploymentReason;
    };
    assert.deepEqual(api.reason, {
      kind: 'commits',
      summary: `2 new commits ${before!.slice(0, 7)}..${head.slice(0, 7)}: Bump db; Fix login`,
      from: before,
      to: head,
      count: 2,
      subjects: ['Bump db', 'Fix login'],
    });
    await until(
      () => bodies.find((b) => b.includes(`Why: 2 new commits ${before!.slice(0, 7)}..${head.slice(0, 7)}`)),
      'a notification with the reason',
      30_000,
    );
  });

  test('a forced API deploy with a token: forced by token:ci, and its SSE start frame says why and who', async (t) => {
    if (!(await requireDocker(t))) return;
    const r = await fetch(`${daemon!.url}/api/repositories/${repoId}/deploy`, { method: 'POST', headers: BEARER });
    assert.equal(r.status, 202, await r.clone().text());
    const { deploymentId } = (await r.json()) as { deploymentId: number };
    const done = await finished(deploymentId);
    assert.equal(done.status, 'success', done.error ?? '');
    assert.equal(done.triggeredBy, 'token:ci');
    assert.deepEqual(done.reason, {
      kind: 'forced',
      summary: 'forced deploy by token:ci via api',
      by: 'token:ci',
      via: 'api',
    });
    const started = await until(
      () => events.find((e) => e.type === 'deployment.started' && e.data['deploymentId'] === deploymentId),
      'the deployment.started frame',
      30_000,
    );
    assert.equal(started.data['triggeredBy'], 'token:ci');
    assert.deepEqual(started.data['reason'], done.reason);
    await until(
      () => bodies.find((b) => b.includes('Why: forced deploy by token:ci via api')),
      'a notification with the forced reason',
      30_000,
    );
  });

  test('a GitHub webhook: a webhook reason with the delivery id, the new commit appended', async (t) => {
    if (!(await requireDocker(t))) return;
    const before = daemon!.store.getRepository(KEY)!.lastCommit!;
    const head = await git.commit('app', { 'compose.yaml': compose('r3') }, { message: 'Add cache' });
    const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: git.repoUrl('app') } });
    const r = await fetch(`${daemon!.url}/api/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': DELIVERY,
        ...signatureHeaders('github', body, HOOK_SECRET),
      },
      body,
    });
    assert.equal(r.status, 202, await r.clone().text());
    const row = await until(() => rows().find((d) => d.trigger === 'webhook'), 'the webhook deployment', 60_000);
    assert.equal(row.reason?.kind, 'webhook');
    const done = await finished(row.id);
    assert.equal(done.status, 'success', done.error ?? '');
    assert.equal(done.commit, head);
    assert.deepEqual(done.reason, {
      kind: 'webhook',
      summary: `webhook from github (delivery ${DELIVERY}); 1 new commit ${before.slice(0, 7)}..${head.slice(0, 7)}: Add cache`,
      provider: 'github',
      deliveryId: DELIVERY,
    });
    assert.equal(done.triggeredBy, 'webhook:github');
  });

  test('a manual rollback: from/to, by whom and the deployment rolled back to', async (t) => {
    if (!(await requireDocker(t))) return;
    const current = daemon!.store.getRepository(KEY)!.lastCommit!;
    const target = rows().find((d) => d.status === 'success' && d.commit && d.commit !== current)!;
    const r = await fetch(`${daemon!.url}/api/repositories/${repoId}/rollback`, { method: 'POST', headers: BEARER });
    assert.equal(r.status, 202, await r.clone().text());
    const { deploymentId } = (await r.json()) as { deploymentId: number };
    const done = await finished(deploymentId);
    assert.equal(done.status, 'success', done.error ?? '');
    assert.deepEqual(done.reason, {
      kind: 'rollback',
      summary: `manual rollback ${current.slice(0, 7)} → ${target.commit!.slice(0, 7)} (deployment #${target.id}) by token:ci`,
      from: current,
      to: target.commit,
      automatic: false,
      by: 'token:ci',
      deploymentId: target.id,
    });
    const logs = daemon!.store.getDeploymentLogs(deploymentId) ?? '';
    assert.match(logs, /why: manual rollback/);
  });

  test('every deployment row of this daemon has a reason with a summary', async (t) => {
    if (!(await requireDocker(t))) return;
    const all = rows();
    assert.ok(all.length >= 5, `${all.length} rows`);
    for (const d of all) assert.ok(d.reason?.summary, `deployment ${d.id} (${d.trigger}) has no reason`);
  });
});
