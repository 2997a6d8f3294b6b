/**
 * @module End to end, mode swarm: the real daemon deploys a repository as a Docker Swarm stack on a one-node swarm
 * (an engine in a network namespace, test/helpers/swarm-cluster.ts; `docker_host: unix://…`) — boot deploy with a
 * SOPS-decrypted value reaching the service, an env change replacing the task, a failing update that Swarm rolls
 * back recorded `rolled_back` (Shiparr redeploys the last good commit's stack and pins the bad one), then a good
 * commit recorded `success`. Then the service API on the stack: the repository's services and tasks, service logs
 * (also followed), restart (a new task, recorded), stop/start by scaling (refused when the count to start is unknown),
 * and remove (the stack's services, not its networks); the repository page in chromium shows the service, its task and
 * its logs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildUi } from '../../scripts/build-ui.ts';
import { BUSYBOX_IMAGE } from '../helpers/docker.ts';
import { launchChromium, requireChromium } from '../helpers/browser.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { requireSwarm, startSwarmCluster, swarmUnavailable, type SwarmCluster } from '../helpers/swarm-cluster.ts';
import { until } from '../helpers/wait.ts';
import type { ActionRecord, SwarmService } from '../../src/domain/types.ts';
import { generateIdentity, sopsEncryptDotenv } from '../unit/secrets/helpers/sops-encrypt.ts';

const KEY = 'fleet/app';
const STACK = 'fleet-app';
const TOKEN = 'swarm-s3cr3t-77c1';

/** One busybox service; `fail` makes its command exit 1, which Swarm's update monitor rolls back. */
function compose(marker: string, fail = false): string {
  return `services:
  app:
    image: ${BUSYBOX_IMAGE}
    pull_policy: never
    init: true
    command: ["sh", "-c", "echo marker=$$MARKER; ${fail ? 'exit 1' : 'exec sleep 3600'}"]
    environment:
      MARKER: ${marker}
      API_TOKEN: \${API_TOKEN}
    stop_grace_period: 1s
    deploy:
      replicas: 1
      restart_policy:
        condition: on-failure
        delay: 1s
      update_config:
        failure_action: rollback
        monitor: 3s
      rollback_config:
        monitor: 1s
`;
}

describe('mode swarm end to end', { concurrency: false }, () => {
  let reason: string | null = null;
  let cluster: SwarmCluster | undefined;
  let git: GitServer | undefined;
  let daemon: TestDaemon | undefined;
  let tmp = '';
  const shas: Record<string, string> = {};
  const me = generateIdentity();

  const rows = () => daemon!.store.listDeployments(KEY, { limit: 100 }).items;
  const finished = (sha: string | undefined) =>
    until(
      () => rows().find((r) => r.commit === sha && r.status !== 'pending' && r.status !== 'running'),
      `the deployment of ${sha}`,
      120_000,
      100,
    );
  /** The running task's env, through the swarm manager's service API. */
  const taskEnv = async (): Promise<{ id: string; env: string[] }[]> => {
    const r = await cluster!.manager.docker([
      'service',
      'ps',
      `${STACK}_app`,
      '--filter',
      'desired-state=running',
      '--format',
      '{{.ID}}',
    ]);
    const out: { id: string; env: string[] }[] = [];
    for (const id of r.stdout.split('\n').filter(Boolean)) {
      const i = await cluster!.manager.docker([
        'inspect',
        '--format',
        '{{json .Spec.ContainerSpec.Env}} {{.Status.State}}',
        id,
      ]);
      const [json, state] = i.stdout.trim().split(' ');
      if (state === 'running') out.push({ id, env: JSON.parse(json ?? '[]') as string[] });
    }
    return out;
  };

  const api = (p: string, init: RequestInit = {}) =>
    fetch(`${daemon!.url}/api/repositories/${encodeURIComponent(KEY)}${p}`, {
      ...init,
      headers: { 'X-Shiparr-Request': '1', ...(init.headers as Record<string, string>) },
    });
  const post = (p: string) => api(p, { method: 'POST' });
  const services = async (): Promise<SwarmService[]> => {
    const r = await api('/containers');
    assert.equal(r.status, 200);
    const body = (await r.json()) as { items: unknown[]; services?: SwarmService[] };
    assert.deepEqual(body.items, []);
    assert.ok(body.services, 'a swarm repository lists its services');
    return body.services;
  };
  const app = async (): Promise<SwarmService | undefined> => (await services()).find((s) => s.service === 'app');
  const runningTask = async (): Promise<string | undefined> => {
    const s = await app();
    const running = s?.tasks.filter((x) => x.state === 'running') ?? [];
    return running.length === 1 ? running[0]?.id : undefined;
  };
  const actions = async (): Promise<ActionRecord[]> =>
    ((await (await api('/actions')).json()) as { items: ActionRecord[] }).items;

  before(async () => {
    reason = await swarmUnavailable();
    if (reason) return;
    try {
      cluster = await startSwarmCluster({ nodes: 1 });
    } catch (err) {
      reason = `could not start a one-node swarm: ${(err as Error).message}`;
      return;
    }
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-swarm-'));
    const keyFile = path.join(tmp, 'age.key');
    await writeFile(keyFile, `# public key: ${me.recipient}\n${me.identity}\n`, { mode: 0o600 });
    registerTestSecrets('decrypted value of the swarm e2e test', [TOKEN, me.identity]);
    const enc = sopsEncryptDotenv([{ key: 'API_TOKEN', value: TOKEN }], { recipients: [me.recipient] });
    git = await startGitServer();
    shas.v1 = await git.createRepo('app', { 'deploy/compose.yaml': compose('v1'), 'deploy/.env.enc': enc.text });
    daemon = await startTestDaemon({
      projects: {
        'fleet.yaml': `project: fleet
repositories:
  app:
    url: ${git.repoUrl('app')}
    path: deploy
    env_file: .env.enc
    mode: swarm
    docker_host: ${cluster.manager.host}
    check_interval: 1
    pull: never
    healthcheck: { timeout: 60 }
    timeouts: { apply: 120 }
`,
      },
      env: { SOPS_AGE_KEY_FILE: keyFile },
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    await git?.close();
    await cluster?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('boot deploy: the stack runs the busybox image with the decrypted value; the row is success', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const d = await finished(shas.v1);
    assert.equal(d.status, 'success', d.error ?? '');
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(logs, /applying: docker stack deploy fleet-app/);
    assert.match(logs, /verifying: 1 service\(s\) converged: fleet-app_app \(1\/1 running\)/);
    assert.doesNotMatch(logs, new RegExp(TOKEN));
    const tasks = await taskEnv();
    assert.equal(tasks.length, 1);
    assert.ok(tasks[0]?.env.includes(`API_TOKEN=${TOKEN}`), 'the decrypted value reaches the service');
    assert.ok(tasks[0]?.env.includes('MARKER=v1'));
    const image = await cluster!.manager.docker([
      'service',
      'inspect',
      '--format',
      '{{.Spec.TaskTemplate.ContainerSpec.Image}}',
      `${STACK}_app`,
    ]);
    assert.equal(image.stdout.trim(), BUSYBOX_IMAGE);
  });

  test('a commit changing an env value replaces the task', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const [before] = await taskEnv();
    shas.v2 = await git!.commit('app', { 'deploy/compose.yaml': compose('v2') });
    const d = await finished(shas.v2);
    assert.equal(d.status, 'success', d.error ?? '');
    const [now] = await taskEnv();
    assert.ok(now?.env.includes('MARKER=v2'));
    assert.notEqual(now?.id, before?.id);
  });

  test('an update Swarm rolls back is recorded rolled_back and pinned; a good commit after it is success', async (t) => {
    if (!requireSwarm(t, reason)) return;
    shas.bad = await git!.commit('app', { 'deploy/compose.yaml': compose('bad', true) });
    const d = await finished(shas.bad);
    assert.equal(d.status, 'rolled_back', d.error ?? '');
    assert.equal(d.stage, 'verifying');
    assert.equal(d.rolledBackTo, shas.v2);
    assert.match(d.error ?? '', /SWARM_ROLLED_BACK: Swarm rolled back the update of fleet-app_app/);
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    // Shiparr's own rollback redeploys the last good commit's stack.
    assert.equal(logs.match(/applying: docker stack deploy fleet-app/g)?.length, 2, logs);
    assert.equal(daemon!.store.getRepository(KEY)?.pinnedCommit, shas.bad);
    await until(async () => {
      const now = await taskEnv();
      return now.length === 1 && now[0]?.env.includes('MARKER=v2');
    }, 'the last good definition running');

    shas.v3 = await git!.commit('app', { 'deploy/compose.yaml': compose('v3') });
    const good = await finished(shas.v3);
    assert.equal(good.status, 'success', good.error ?? '');
    const [now] = await taskEnv();
    assert.ok(now?.env.includes('MARKER=v3'));
    assert.equal(daemon!.store.getRepository(KEY)?.pinnedCommit, null);
  });

  test('the API lists the stack service with 1/1 tasks on the manager, and its logs', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const s = await until(async () => {
      const x = await app();
      return x?.running === 1 && x.tasks.length === 1 ? x : undefined;
    }, 'one running task');
    assert.equal(s.name, `${STACK}_app`);
    assert.equal(s.mode, 'replicated');
    assert.equal(s.desired, 1);
    assert.equal(s.image, BUSYBOX_IMAGE);
    assert.equal(s.stoppedReplicas, null);
    const [task] = s.tasks;
    assert.equal(task?.state, 'running');
    assert.equal(task?.desiredState, 'running');
    assert.equal(task?.slot, 1);
    assert.ok(task?.node, 'the task names its node');
    assert.match(task?.containerId ?? '', /^[0-9a-f]{64}$/);
    // The repository's container counts are its stack's tasks (compose labels are absent on swarm tasks).
    const counts = await until(async () => {
      const r = (await (await api('')).json()) as { containers: { total: number; running: number } | null };
      return r.containers?.running === 1 ? r.containers : undefined;
    }, 'the repository counts its running task');
    assert.deepEqual(counts, { total: 1, running: 1, unhealthy: 0 });

    const logs = await api('/services/app/logs?tail=50');
    assert.equal(logs.status, 200);
    assert.match(logs.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(await logs.text(), /marker=v3/);
    assert.equal((await api('/services/nope/logs')).status, 404);
    assert.equal((await api('/services/..%2Fx/logs')).status, 404);

    // Follow: the same stream shape as a container's log.
    const ac = new AbortController();
    const res = await api('/services/app/logs?follow=1&tail=5', { signal: ac.signal });
    assert.equal(res.status, 200);
    let seen = '';
    const reader = res.body!.getReader();
    await until(async () => {
      const { value, done } = await reader.read();
      if (value) seen += Buffer.from(value).toString('utf8');
      return done || /marker=v3/.test(seen);
    }, 'the followed log');
    assert.match(seen, /marker=v3/);
    ac.abort();
    await reader.cancel().catch(() => undefined);
  });

  test('the repository page shows the swarm service with its running task, and its logs', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const exe = await requireChromium(t);
    if (!exe) return;
    await buildUi();
    const browser = await launchChromium(exe);
    try {
      const p = await browser.newPage();
      await p.goto(`${daemon!.url}/#/repo/${daemon!.supervisor.get(KEY)!.id}`);
      await p.getByRole('heading', { level: 2, name: 'Swarm services' }).waitFor({ timeout: 30_000 });
      const row = p.locator('tr[data-service="app"]');
      await row.locator('.replicas', { hasText: '1/1' }).waitFor({ timeout: 30_000 });
      assert.match(await row.innerText(), new RegExp(`${STACK}_app`));
      await row.locator('li[data-task] .badge', { hasText: 'running' }).waitFor();
      assert.equal(await p.locator('#containers-title').count(), 0, 'no empty containers table for a stack');
      await row.getByRole('button', { name: 'Logs of service app' }).click();
      await p.getByRole('heading', { name: 'Logs of service app' }).waitFor();
      await p.locator('pre', { hasText: 'marker=v3' }).waitFor({ timeout: 30_000 });
    } finally {
      await browser.close();
    }
  });

  test('restart replaces the task (a new task id) and is recorded', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const before = await until(runningTask, 'one running task');
    const r = await post('/services/app/restart');
    assert.equal(r.status, 200, await r.clone().text());
    const { action } = (await r.json()) as { action: ActionRecord };
    assert.equal(action.action, 'restart');
    assert.equal(action.service, 'app');
    assert.equal(action.status, 'success');
    const after = await until(async () => {
      const id = await runningTask();
      return id && id !== before ? id : undefined;
    }, 'a new running task');
    assert.notEqual(after, before);
    const [latest] = await actions();
    assert.equal(latest?.id, action.id);
    assert.equal((await post('/services/nope/restart')).status, 404);
  });

  test('stop scales to 0 and records the replicas; start scales back; unknown counts are refused', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const stop = await post('/services/app/stop');
    assert.equal(stop.status, 200, await stop.clone().text());
    assert.equal(((await stop.json()) as { action: ActionRecord }).action.status, 'success');
    const stopped = await until(async () => {
      const s = await app();
      return s?.desired === 0 && s.running === 0 ? s : undefined;
    }, 'the service scaled to 0');
    assert.equal(stopped.stoppedReplicas, 1);
    // Stopping again changes nothing and keeps the recorded count.
    assert.equal((await post('/services/app/stop')).status, 200);
    assert.equal((await app())?.stoppedReplicas, 1);

    const start = await post('/services/app/start');
    assert.equal(start.status, 200, await start.clone().text());
    const started = await until(async () => {
      const s = await app();
      return s?.desired === 1 && s.running === 1 ? s : undefined;
    }, 'the service scaled back to 1');
    assert.equal(started.stoppedReplicas, null);

    // Scaled to 0 behind Shiparr's back: the count to start is unknown, and start says so.
    const scaled = await cluster!.manager.docker(['service', 'scale', '--detach', `${STACK}_app=0`]);
    assert.equal(scaled.code, 0, scaled.output);
    const refused = await post('/services/app/start');
    assert.equal(refused.status, 409);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'refused');
    assert.match(body.error.message, /service "app" has 0 replicas and Shiparr did not stop it/);
    assert.equal((await app())?.desired, 0);
    const recorded = (await actions()).slice(0, 3).map((a) => `${a.action}:${a.status}`);
    assert.deepEqual(recorded, ['start:success', 'stop:success', 'stop:success']);
    const back = await cluster!.manager.docker(['service', 'scale', '--detach', `${STACK}_app=1`]);
    assert.equal(back.code, 0, back.output);
  });

  test("remove removes the stack's services (not its network) and is recorded", async (t) => {
    if (!requireSwarm(t, reason)) return;
    const r = await post('/remove');
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(((await r.json()) as { action: ActionRecord }).action.action, 'remove');
    assert.deepEqual(await services(), []);
    const nets = await cluster!.manager.docker([
      'network',
      'ls',
      '--filter',
      `label=com.docker.stack.namespace=${STACK}`,
      '--format',
      '{{.Name}}',
    ]);
    assert.match(nets.stdout, new RegExp(`${STACK}_default`));
  });
});
