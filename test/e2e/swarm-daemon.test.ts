/**
 * @module End to end, mode swarm: the real daemon deploys a repository as a Docker Swarm stack on a one-node swarm
 * (an engine in a network namespace, test/helpers/swarm-cluster.ts; `docker_host: unix://…`) — boot deploy with a
 * SOPS-decrypted value reaching the service, an env change replacing the task, a failing update that Swarm rolls
 * back recorded `rolled_back` (Shiparr redeploys the last good commit's stack and pins the bad one), then a good
 * commit recorded `success`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUSYBOX_IMAGE } from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { requireSwarm, startSwarmCluster, swarmUnavailable, type SwarmCluster } from '../helpers/swarm-cluster.ts';
import { until } from '../helpers/wait.ts';
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
});
