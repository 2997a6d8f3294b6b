/**
 * @module Swarm stacks on a real one-node swarm (an engine in a network namespace, test/helpers/swarm-cluster.ts):
 * the stack-deploy worker task and the convergence watch — deploy, an env change replacing the task, a changed
 * config file rolling the service under a new content-hashed name, a failing update rolled back by Swarm, service
 * logs and forced restarts, an update stuck until the verify timeout. The stack-file rewrite is also checked on its
 * own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Dockerode from 'dockerode';
import { restartService, rewriteStackFile, serviceLogs, watchStack } from '../../../src/compose/swarm.ts';
import { createDocker, verifyStack } from '../../../src/compose/verify.ts';
import { prepareEngine } from '../../../src/compose/engine.ts';
import { exec } from '../../../src/lib/exec.ts';
import stackDeploy from '../../../src/workers/tasks/stack-deploy.ts';
import { BUSYBOX_IMAGE } from '../../helpers/docker.ts';
import { registerTestSecrets } from '../../helpers/secret-sweep.ts';
import { requireSwarm, startSwarmCluster, swarmUnavailable, type SwarmCluster } from '../../helpers/swarm-cluster.ts';
import { until } from '../../helpers/wait.ts';

const STACK = 'shiparr-swarm-it';
const SECRET = 'env-file-secret-5d1c0a';
registerTestSecrets('swarm stack test', [SECRET]);

/** A stack of one busybox service printing MARKER, SECRET_VALUE and its config file, then sleeping. */
function stackCompose(o: { marker: string; fail?: boolean }): string {
  const run = o.fail ? 'exit 1' : 'exec sleep 3600';
  return `services:
  app:
    image: ${BUSYBOX_IMAGE}
    pull_policy: never
    init: true
    command: ["sh", "-c", "echo marker=$$MARKER secret=$$SECRET_VALUE; cat /etc/app.conf; ${run}"]
    env_file: app.env
    environment:
      MARKER: "${o.marker}"
    configs:
      - source: app_conf
        target: /etc/app.conf
    stop_grace_period: 1s
    deploy:
      replicas: 1
      restart_policy:
        condition: on-failure
        delay: 1s
      update_config:
        failure_action: rollback
        monitor: 2s
      rollback_config:
        monitor: 1s
configs:
  app_conf:
    file: ./conf/app.conf
`;
}

describe('swarm stacks on a one-node swarm', { concurrency: false }, () => {
  let reason: string | null = null;
  let cluster: SwarmCluster | undefined;
  let docker: Dockerode;
  let checkout = '';
  let dir = '';

  const deploy = (marker: string, fail = false) =>
    writeFile(path.join(dir, 'compose.yaml'), stackCompose({ marker, fail })).then(() =>
      stackDeploy({
        cwd: dir,
        rootDir: checkout,
        project: STACK,
        files: [],
        dockerHost: cluster!.manager.host,
        pull: 'never',
        prune: true,
        timeoutMs: 120_000,
        secretFiles: [path.join(dir, 'app.env')],
      }),
    );
  const tasks = async () =>
    (await docker.listTasks({ filters: { service: [`${STACK}_app`], 'desired-state': ['running'] } })) as {
      ID: string;
      Spec: { ContainerSpec: { Env?: string[]; Configs?: { ConfigName: string }[] } };
    }[];

  before(async () => {
    reason = await swarmUnavailable();
    if (reason) return;
    try {
      cluster = await startSwarmCluster({ nodes: 1 });
    } catch (err) {
      reason = `could not start a one-node swarm: ${(err as Error).message}`;
      return;
    }
    docker = createDocker(cluster.manager.host);
    checkout = await mkdtemp(path.join(os.tmpdir(), 'shiparr-swarm-it-'));
    dir = path.join(checkout, 'stack');
    await mkdir(path.join(dir, 'conf'), { recursive: true });
    await writeFile(path.join(dir, 'app.env'), `SECRET_VALUE=${SECRET}\n`);
    await writeFile(path.join(dir, 'conf/app.conf'), 'conf-v1\n');
  });

  after(async () => {
    await cluster?.dispose();
    if (checkout) await rm(checkout, { recursive: true, force: true });
  });

  test('the stack file rewrite: schema-only keys dropped, file configs named by content, files outside refused', async () => {
    const yaml = `name: p
services:
  a:
    image: x
    pull_policy: never
configs:
  c:
    name: p_c
    file: ${path.join(os.tmpdir(), 'in', 'c.txt')}
  ext:
    external: true
secrets:
  s:
    name: own-name
    file: ${path.join(os.tmpdir(), 'in', 's.txt')}
`;
    const read = async (f: string) => Buffer.from(path.basename(f));
    const key = Buffer.alloc(32, 1);
    const a = await rewriteStackFile(yaml, 'p', os.tmpdir(), key, read);
    assert.doesNotMatch(a.yaml, /^name:/m);
    assert.doesNotMatch(a.yaml, /pull_policy/);
    assert.deepEqual(
      a.objects.map((o) => `${o.kind}:${o.key}:${o.name.replace(/[0-9a-f]{12}$/, 'H')}`),
      ['configs:c:p_c_H', 'secrets:s:own-name_H'],
    );
    assert.match(a.yaml, /external: true/);
    const b = await rewriteStackFile(yaml, 'p', os.tmpdir(), key, async (f) => Buffer.from(`${path.basename(f)}!`));
    assert.notEqual(a.objects[0]?.name, b.objects[0]?.name, 'another content, another name');
    assert.notEqual(a.objects[1]?.name, b.objects[1]?.name, 'another secret content, another name');
    // A config name carries the plain content hash (configs are readable anyway); a secret's only a keyed one.
    assert.equal(a.objects[0]?.name.slice(-12), createHash('sha256').update('c.txt').digest('hex').slice(0, 12));
    assert.notEqual(a.objects[1]?.name.slice(-12), createHash('sha256').update('s.txt').digest('hex').slice(0, 12));
    const again = await rewriteStackFile(yaml, 'p', os.tmpdir(), key, read);
    assert.equal(again.objects[1]?.name, a.objects[1]?.name, 'same key and content, same secret name');
    const otherKey = await rewriteStackFile(yaml, 'p', os.tmpdir(), Buffer.alloc(32, 2), read);
    assert.notEqual(otherKey.objects[1]?.name, a.objects[1]?.name);
    await assert.rejects(
      rewriteStackFile(yaml, 'p', path.join(os.tmpdir(), 'elsewhere'), key, read),
      /config "c" reads .*c\.txt, which is outside the checkout/,
    );
  });

  test('deploy: the service runs the busybox image with the env_file values; the watch converges', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const r = await deploy('v1');
    assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}\n${r.output}`);
    assert.match(r.output, /Creating service shiparr-swarm-it_app/);
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 60_000, pollMs: 250, stableMs: 1_000 });
    assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
    assert.match(v.ok ? v.summary : '', /1 service\(s\) converged: shiparr-swarm-it_app \(1\/1 running/);
    const [task] = await tasks();
    assert.ok(task);
    assert.ok(task.Spec.ContainerSpec.Env?.includes(`SECRET_VALUE=${SECRET}`), 'the env_file value reaches the task');
    assert.ok(task.Spec.ContainerSpec.Env?.includes('MARKER=v1'));
    const logs = await until(async () => {
      const l = await serviceLogs(docker, STACK, `${STACK}_app`, { tail: 20 });
      return l && /marker=v1/.test(l) ? l : null;
    }, 'service logs');
    assert.match(logs, /conf-v1/);
    assert.equal(await serviceLogs(docker, 'another-stack', `${STACK}_app`, { tail: 5 }), null);
  });

  test('a new env value replaces the task; the watch waits for the new one', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const [old] = await tasks();
    const r = await deploy('v2');
    assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 60_000, pollMs: 250, stableMs: 1_000 });
    assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
    const now = await tasks();
    assert.equal(now.length, 1);
    assert.notEqual(now[0]?.ID, old?.ID);
    assert.ok(now[0]?.Spec.ContainerSpec.Env?.includes('MARKER=v2'));
  });

  test('a changed config file gets a new content-hashed name and rolls the service', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const [old] = await tasks();
    const oldName = old?.Spec.ContainerSpec.Configs?.[0]?.ConfigName ?? '';
    assert.match(oldName, /^shiparr-swarm-it_app_conf_[0-9a-f]{12}$/);
    await writeFile(path.join(dir, 'conf/app.conf'), 'conf-v2\n');
    const r = await deploy('v2');
    assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 60_000, pollMs: 250, stableMs: 1_000 });
    assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
    const [now] = await tasks();
    const newName = now?.Spec.ContainerSpec.Configs?.[0]?.ConfigName ?? '';
    assert.match(newName, /^shiparr-swarm-it_app_conf_[0-9a-f]{12}$/);
    assert.notEqual(newName, oldName);
    assert.notEqual(now?.ID, old?.ID);
    await until(
      async () => /conf-v2/.test((await serviceLogs(docker, STACK, `${STACK}_app`, { tail: 20 })) ?? ''),
      'the new config content in the logs',
    );
  });

  test('a failing update is rolled back by Swarm: the watch reports SWARM_ROLLED_BACK, never success', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const r = await deploy('bad', true);
    assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
    const w = await watchStack({ docker, stack: STACK, timeoutMs: 90_000, pollMs: 250 });
    assert.equal(w.ok, false);
    assert.equal(w.ok ? '' : w.code, 'SWARM_ROLLED_BACK');
    // The failed task of the bad spec may still be listed for a moment while Swarm shuts it down.
    await until(async () => {
      const now = await tasks();
      return now.length === 1 && now[0]?.Spec.ContainerSpec.Env?.includes('MARKER=v2');
    }, 'the previous spec running again');
    // Deploying the good definition again starts from a clean update status and converges.
    const again = await deploy('v2');
    assert.equal(again.ok, true);
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 60_000, pollMs: 250, stableMs: 1_000 });
    assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
  });

  test('restartService replaces the task with the same spec; unknown or foreign services are refused', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const [old] = await tasks();
    assert.equal(await restartService(docker, STACK, `${STACK}_app`), true);
    await until(async () => {
      const [now] = await tasks();
      return now && now.ID !== old?.ID;
    }, 'a new task');
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 60_000, pollMs: 250, stableMs: 1_000 });
    assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
    assert.equal(await restartService(docker, STACK, 'no-such-service'), false);
    assert.equal(await restartService(docker, 'other', `${STACK}_app`), false);
  });

  test('a stuck update (a placement no node satisfies) fails with VERIFY_TIMEOUT at the verify timeout', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const stuck = stackCompose({ marker: 'v2' }).replace(
      '      replicas: 1\n',
      '      replicas: 1\n      placement:\n        constraints: ["node.labels.shiparr-none == yes"]\n',
    );
    await writeFile(path.join(dir, 'compose.yaml'), stuck);
    const r = await stackDeploy({
      cwd: dir,
      rootDir: checkout,
      project: STACK,
      files: [],
      dockerHost: cluster!.manager.host,
      pull: 'never',
      prune: true,
      timeoutMs: 120_000,
    });
    assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
    const started = Date.now();
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 6_000, pollMs: 250 });
    assert.equal(v.ok, false);
    assert.equal(v.ok ? '' : v.code, 'VERIFY_TIMEOUT');
    assert.match(
      v.ok ? '' : v.message,
      /stack shiparr-swarm-it not converged after 6 s: shiparr-swarm-it_app \(0\/1 running/,
    );
    assert.ok(Date.now() - started >= 6_000);
  });

  test('the docker CLI 20.10 deploys the same rewritten stack file (configs, secrets, env_file values)', async (t) => {
    if (!requireSwarm(t, reason)) return;
    // Hosts may carry an older CLI than the one first on PATH: /usr/bin/docker here, when it is a 20.x.
    const old = await exec('/usr/bin/docker', ['version', '--format', '{{.Client.Version}}'], { timeoutMs: 15_000 });
    const version = old.stdout.trim();
    if (!version.startsWith('20.'))
      return void t.skip(`no docker CLI 20.x at /usr/bin/docker (${version || old.error})`);
    const bin = await mkdtemp(path.join(os.tmpdir(), 'shiparr-cli20-'));
    const savedPath = process.env.PATH;
    try {
      await symlink('/usr/bin/docker', path.join(bin, 'docker'));
      process.env.PATH = `${bin}:${savedPath ?? ''}`;
      await writeFile(path.join(dir, 'secret.txt'), 'swarm-secret-file\n');
      const withSecret = stackCompose({ marker: 'cli20' })
        .replace('    configs:\n', '    secrets: [token]\n    configs:\n')
        .concat('secrets:\n  token:\n    file: ./secret.txt\n');
      await writeFile(path.join(dir, 'compose.yaml'), withSecret);
      const r = await stackDeploy({
        cwd: dir,
        rootDir: checkout,
        project: 'shiparr-cli20',
        files: [],
        dockerHost: cluster!.manager.host,
        pull: 'never',
        prune: true,
        timeoutMs: 120_000,
      });
      assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}\n${r.output}`);
      assert.match(r.output, /Creating secret shiparr-cli20_token_[0-9a-f]{12}/);
      const v = await verifyStack({ docker, stack: 'shiparr-cli20', timeoutMs: 60_000, pollMs: 250, stableMs: 1_000 });
      assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
      const spec = (await docker.getService('shiparr-cli20_app').inspect()).Spec as {
        TaskTemplate: { ContainerSpec: { Env?: string[] } };
      };
      assert.ok(spec.TaskTemplate.ContainerSpec.Env?.includes(`SECRET_VALUE=${SECRET}`));
    } finally {
      process.env.PATH = savedPath;
      await rm(bin, { recursive: true, force: true });
    }
  });

  test("the prune after a deploy through a context (engine environment only) runs on the stack's engine", async (t) => {
    if (!requireSwarm(t, reason)) return;
    const stack = 'shiparr-prune-ctx';
    // A Docker CLI context naming the manager, in a private DOCKER_CONFIG: the task gets only the engine's CLI
    // environment (no dockerHost), as a repository with `docker_context` does.
    const config = await mkdtemp(path.join(os.tmpdir(), 'shiparr-ctx-'));
    try {
      const ctx = await exec(
        'docker',
        ['context', 'create', 'swarm-manager', '--docker', `host=${cluster!.manager.host}`],
        {
          timeoutMs: 30_000,
          env: { DOCKER_CONFIG: config },
        },
      );
      assert.equal(ctx.code, 0, ctx.output);
      const engine = prepareEngine(
        { context: 'swarm-manager' },
        { stateDir: path.join(config, 'engines'), env: { ...process.env, DOCKER_CONFIG: config } },
      );
      const names: string[] = [];
      let output = '';
      for (const v of ['p1', 'p2', 'p3']) {
        await writeFile(path.join(dir, 'conf/app.conf'), `conf-${v}\n`);
        await writeFile(path.join(dir, 'compose.yaml'), stackCompose({ marker: v }));
        const r = await stackDeploy({
          cwd: dir,
          rootDir: checkout,
          project: stack,
          files: [],
          engineEnv: engine.env,
          pull: 'never',
          prune: true,
          timeoutMs: 120_000,
        });
        assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
        output = r.ok ? r.output : '';
        const svc = (await docker.getService(`${stack}_app`).inspect()).Spec as {
          TaskTemplate: { ContainerSpec: { Configs?: { ConfigName: string }[] } };
        };
        names.push(svc.TaskTemplate.ContainerSpec.Configs?.[0]?.ConfigName ?? '');
      }
      // The third deploy's prune removed the first config (neither the current nor the previous spec uses it).
      assert.match(output, new RegExp(`removed unused configs/secrets: .*${names[0]}`));
      const left = (await docker.listConfigs({ filters: { label: [`com.docker.stack.namespace=${stack}`] } }))
        .map((c) => c.Spec?.Name)
        .sort();
      assert.deepEqual(left, [names[1], names[2]].sort());
    } finally {
      await exec('docker', ['-H', cluster!.manager.host, 'stack', 'rm', stack], { timeoutMs: 60_000 });
      await rm(config, { recursive: true, force: true });
    }
  });
});
