/**
 * @module End to end: notifications from a real deploy. Failing endpoints (500, connection refused) do not change
 * the deployment's outcome and are recorded on it; no URL token appears in the logs or API output.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  composeDown,
  removeProjectContainers,
  webServiceCompose,
  freePort,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets, saveArtifact } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { createLogger } from '../../src/logger.ts';

const KEY = 'notes/web';
const DISCORD_TOKEN = 'DiscordSecretTok3n';
const TELEGRAM_TOKEN = '123456:TelegramSecretXYZ';

describe('notifications end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let hooks: Server;
  let project = '';
  const captured: string[] = [];
  const requests: { method: string; url: string; body: string }[] = [];

  before(async () => {
    git = await startGitServer();
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', body });
        res.statusCode = req.url?.startsWith('/api/webhooks/') ? 500 : 200;
        res.end('{}');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    if (!(await dockerAvailable())) return;
    const image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-notify');
    const port = (hooks.address() as AddressInfo).port;
    const closed = await freePort();
    await git.createRepo('web', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'n1' }) });
    const log = createLogger({
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          captured.push(chunk.toString());
          cb();
        },
      }),
    });
    registerTestSecrets('notification tokens', [DISCORD_TOKEN, TELEGRAM_TOKEN]);
    daemon = await startTestDaemon({
      projects: {
        'notes.yaml': `project: notes
repositories:
  web:
    url: ${git.repoUrl('web')}
    check_interval: 1
    compose_project: ${project}
    pull: never
    healthcheck: { timeout: 20 }
    timeouts: { notify: 2 }
    notifications:
      success:
        - discord://${DISCORD_TOKEN}@987654321
        - telegram://${TELEGRAM_TOKEN}@telegram?chats=42
global_notifications:
  success: [generic+http://127.0.0.1:${port}/ok]
`,
      },
      daemon: { log, notifyOverrides: { discord: `http://127.0.0.1:${port}`, telegram: `http://127.0.0.1:${closed}` } },
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    saveArtifact('notifications-e2e.log', captured.join(''));
    if (project) {
      await composeDown(project);
      await removeProjectContainers(project);
    }
    await git?.close();
    await new Promise<void>((r) => hooks.close(() => r()));
  });

  test('failing endpoints leave the deployment successful and are recorded per URL, masked', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await until(
      () =>
        daemon!.store
          .listDeployments(KEY, { limit: 10 })
          .items.find((r) => r.status === 'success' && r.notifications?.length),
      'deployment with notification results',
      90_000,
    );
    const results = d.notifications as {
      url: string;
      service: string;
      ok: boolean;
      error?: string;
      status?: number;
      attempts: number;
    }[];
    const by = (s: string) => results.find((r) => r.service === s);
    assert.equal(results.length, 3);
    assert.equal(by('discord')?.ok, false);
    assert.equal(by('discord')?.status, 500);
    assert.equal(by('discord')?.attempts, 2, 'one retry');
    assert.equal(by('telegram')?.ok, false);
    assert.match(by('telegram')?.error ?? '', /refused|ECONNREFUSED|connect/i);
    assert.equal(by('generic')?.ok, true);
    assert.equal(requests.filter((r) => r.url.startsWith('/api/webhooks/987654321/')).length, 2);
    assert.equal(requests.filter((r) => r.url === '/ok').length, 1);
    assert.match(requests.find((r) => r.url === '/ok')?.body ?? '', /notes/);
  });

  test('no URL token appears in logs or API output', async (t) => {
    if (!(await requireDocker(t))) return;
    const repo = daemon!.supervisor.get(KEY)!;
    const api = await Promise.all(
      [
        `/api/repositories/${repo.id}`,
        `/api/repositories/${repo.id}/deployments`,
        '/api/projects/notes',
        '/api/projects',
        '/api/repositories',
        '/metrics',
      ].map(async (p) => (await fetch(`${daemon!.url}${p}`)).text()),
    );
    const first = daemon!.store.listDeployments(KEY, { limit: 1 }).items[0]!;
    api.push(await (await fetch(`${daemon!.url}/api/deployments/${first.id}`)).text());
    api.push(await (await fetch(`${daemon!.url}/api/deployments/${first.id}/logs`)).text());
    const everything = api.join('\n') + captured.join('');
    assert.ok(captured.length > 5, 'logs were captured');
    assert.ok(everything.includes('notif') || everything.includes('discord'), 'notifications show up somewhere');
    for (const secret of [DISCORD_TOKEN, TELEGRAM_TOKEN, 'TelegramSecretXYZ'])
      assert.ok(!everything.includes(secret), `${secret} leaked`);
  });
});
