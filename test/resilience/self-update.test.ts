/**
 * @module Self-update (uroboros): own-container detection from cgroup v1/v2, mountinfo and HOSTNAME fixtures; the
 * compose-project match; flagging a deployment `selfUpdate` before compose runs (real supervisor + store, stubbed
 * worker tasks); and boot-time finalisation against a real store file and a real git checkout. The engine is faked
 * only where our "own container" must exist — a test process is not running inside the container it inspects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../../src/logger.ts';
import { Store } from '../../src/store/index.ts';
import { loadProjects } from '../../src/config/load.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import {
  containerIdFromCgroup,
  containerIdFromMountinfo,
  detectContainerId,
  detectSelf,
  finaliseSelfUpdates,
  selfMatcher,
  type SelfDocker,
} from '../../src/compose/self-update.ts';
import type { RunTask } from '../../src/workers/types.ts';
import { until } from '../helpers/wait.ts';
import {
  HELPER_LABEL,
  helperFiles,
  helperName,
  helperRunArgs,
  readHelperResult,
} from '../../src/compose/self-update-helper.ts';
import { tempDirs } from './helpers.ts';
import { lastSuccessfulDeployment, listDeploymentsByStatus } from '../helpers/store-queries.ts';

const log = createLogger({ level: 'silent', format: 'json' });
const ID = 'f'.repeat(8) + '0123456789abcdef'.repeat(3) + '01234567';
const OTHER = 'a'.repeat(64);

const CGROUP_V1 = `12:pids:/docker/${ID}
11:memory:/docker/${ID}
1:name=systemd:/docker/${ID}
0::/system.slice/containerd.service
`;
const CGROUP_V2_SYSTEMD = `0::/system.slice/docker-${ID}.scope\n`;
const CGROUP_V1_SYSTEMD = `4:memory:/system.slice/docker-${ID}.scope\n1:name=systemd:/system.slice/docker-${ID}.scope\n`;
const CGROUP_HOST = `4:memory:/user.slice\n0::/user.slice/user-1000.slice/session-2.scope\n`;
const CGROUP_V2_PRIVATE_NS = '0::/\n';
const MOUNTINFO_CONTAINER = [
  '812 700 0:52 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC',
  `830 812 254:1 /var/lib/docker/containers/${ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw`,
  `831 812 254:1 /var/lib/docker/containers/${ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw`,
  `832 812 254:1 /var/lib/docker/containers/${ID}/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw`,
  '',
].join('\n');
// A Docker host lists other containers' shm mounts: that must not count as "we are that container".
const MOUNTINFO_HOST = [
  '26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  `300 41 0:60 / /var/lib/docker/containers/${OTHER}/mounts/shm rw,nosuid,nodev,noexec,relatime shared:200 - tmpfs shm rw,size=65536k`,
  '',
].join('\n');

test('container id from cgroup v1, v1+systemd and v2+systemd; none on a host or with a private cgroup namespace', () => {
  assert.equal(containerIdFromCgroup(CGROUP_V1), ID);
  assert.equal(containerIdFromCgroup(CGROUP_V1_SYSTEMD), ID);
  assert.equal(containerIdFromCgroup(CGROUP_V2_SYSTEMD), ID);
  assert.equal(containerIdFromCgroup(CGROUP_HOST), null);
  assert.equal(containerIdFromCgroup(CGROUP_V2_PRIVATE_NS), null);
  assert.equal(containerIdFromCgroup(`0::/docker/${ID.slice(0, 63)}\n`), null, 'a short id is not an id');
});

test('container id from mountinfo (own /etc mounts only), then HOSTNAME as a 12-hex prefix', () => {
  assert.equal(containerIdFromMountinfo(MOUNTINFO_CONTAINER), ID);
  assert.equal(containerIdFromMountinfo(MOUNTINFO_HOST), null);
  assert.equal(detectContainerId({ cgroup: CGROUP_V2_PRIVATE_NS, mountinfo: MOUNTINFO_CONTAINER, hostname: 'x' }), ID);
  assert.equal(detectContainerId({ cgroup: CGROUP_V1, mountinfo: null, hostname: null }), ID);
  assert.equal(
    detectContainerId({ cgroup: CGROUP_V2_PRIVATE_NS, mountinfo: MOUNTINFO_HOST, hostname: ID.slice(0, 12) }),
    ID.slice(0, 12),
  );
  assert.equal(detectContainerId({ cgroup: CGROUP_HOST, mountinfo: MOUNTINFO_HOST, hostname: 'homeserver' }), null);
  assert.equal(detectContainerId({ hostname: 'ABCDEF012345' }), null, 'upper case is not a docker hostname');
});

const fakeDocker = (
  containers: Record<string, { labels?: Record<string, string>; running?: boolean; health?: string }>,
): SelfDocker => ({
  getContainer: (id: string) => ({
    inspect: async () => {
      const full = Object.keys(containers).find((k) => k.startsWith(id));
      if (!full) throw Object.assign(new Error(`(HTTP code 404) no such container - ${id}`), { statusCode: 404 });
      const c = containers[full]!;
      return {
        Id: full,
        Image: 'sha256:1111',
        HostConfig: { GroupAdd: ['998'], NetworkMode: 'host' },
        Config: { Labels: c.labels ?? {}, Env: ['PATH=/usr/bin', 'SHIPARR_PORT=8080'] },
        State: {
          Running: c.running ?? true,
          Status: c.running === false ? 'exited' : 'running',
          Health: c.health ? { Status: c.health } : null,
        },
      };
    },
  }),
});

test('detectSelf reads the compose project label; unknown ids and no container mean "no self"', async () => {
  const docker = fakeDocker({ [ID]: { labels: { 'com.docker.compose.project': 'shiparr' } } });
  const helperBits = {
    image: 'sha256:1111',
    groupAdd: ['998'],
    networkMode: 'host',
    envNames: ['PATH', 'SHIPARR_PORT'],
  };
  assert.deepEqual(await detectSelf({ docker, log, containerId: ID.slice(0, 12) }), {
    containerId: ID,
    composeProject: 'shiparr',
    ...helperBits,
  });
  assert.equal(await detectSelf({ docker, log, containerId: OTHER }), null);
  assert.equal(await detectSelf({ docker, log, containerId: null }), null);
  assert.deepEqual(await detectSelf({ docker: fakeDocker({ [ID]: {} }), log, containerId: ID }), {
    containerId: ID,
    composeProject: null,
    ...helperBits,
  });
  const isSelf = selfMatcher({ containerId: ID, composeProject: 'shiparr' });
  assert.equal(isSelf('shiparr'), true);
  assert.equal(isSelf('web'), false);
  assert.equal(selfMatcher({ containerId: ID, composeProject: null })('shiparr'), false);
  assert.equal(selfMatcher(null)('shiparr'), false);
});

/** A real git checkout with one commit; returns its sha. */
function gitCheckout(dir: string): string {
  const env = {
    ...process.env,
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@t',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@t',
  };
  execFileSync('git', ['init', '-q', '-b', 'main', dir], { env });
  execFileSync('git', ['-C', dir, 'commit', '-q', '--allow-empty', '-m', 'one'], { env });
  return execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { env, encoding: 'utf8' }).trim();
}

test('boot finalisation: success when our container runs and the checkout is at the commit; failed otherwise', async (t) => {
  const dirs = await tempDirs(t, 'selfupd');
  const checkout = path.join(dirs.dataDir, 'checkout');
  await mkdir(checkout, { recursive: true });
  const sha = gitCheckout(checkout);
  const file = path.join(dirs.dataDir, 'shiparr.db');
  let store = Store.open(file);
  store.syncConfig([
    {
      name: 'ops',
      file: '/cfg/ops.yaml',
      repositories: [
        {
          key: 'ops/shiparr',
          name: 'shiparr',
          url: 'http://127.0.0.1/x.git',
          branch: 'main',
          path: '.',
          localPath: checkout,
          checkInterval: 60,
        },
      ],
    },
  ]);
  const open = (commit: string) => {
    const d = store.createDeployment({ repoKey: 'ops/shiparr', trigger: 'poll', status: 'running', commit });
    store.updateDeployment(d.id, { stage: 'applying', selfUpdate: true });
    return d.id;
  };
  const good = open(sha);
  const other = 'b'.repeat(40);
  // What the replaced process's shutdown and the next boot do first: self-update rows must survive both.
  assert.deepEqual(store.markInterrupted({ exceptSelfUpdate: true }), []);
  store.close();
  store = Store.open(file);
  t.after(() => store.close());
  assert.deepEqual(
    store.openSelfUpdates().map((d) => d.id),
    [good],
  );

  const self = { containerId: ID, composeProject: 'ops' };
  const r1 = await finaliseSelfUpdates({ store, self, docker: fakeDocker({ [ID]: { health: 'starting' } }), log });
  assert.deepEqual(r1, [{ id: good, repoKey: 'ops/shiparr', commit: sha, status: 'success', error: null }]);
  assert.equal(store.getDeployment(good)?.status, 'success');
  assert.equal(store.getRepository('ops/shiparr')?.lastCommit, sha, 'the success counts as the last good commit');
  assert.match(store.getDeploymentLogs(good) ?? '', /self-update finalised at boot: success/);
  // The row had no reason (opened here without one): finalising gives it the self-update one.
  assert.equal(store.getDeployment(good)?.reason?.kind, 'self-update');
  assert.deepEqual(store.openSelfUpdates(), []);

  const wrongCommit = open(other);
  const [r2] = await finaliseSelfUpdates({ store, self, docker: fakeDocker({ [ID]: {} }), log });
  assert.equal(r2?.id, wrongCommit);
  assert.equal(r2?.status, 'failed');
  assert.match(
    store.getDeployment(wrongCommit)?.error ?? '',
    /SELF_UPDATE_UNCONFIRMED.*checkout is at .*expected bbbbbbbbbbbb/,
  );

  const unhealthy = open(sha);
  const [r3] = await finaliseSelfUpdates({ store, self, docker: fakeDocker({ [ID]: { health: 'unhealthy' } }), log });
  assert.equal(r3?.status, 'failed');
  assert.match(store.getDeployment(unhealthy)?.error ?? '', /own container is unhealthy/);

  const lost = open(sha);
  const [r4] = await finaliseSelfUpdates({ store, self: null, docker: fakeDocker({}), log });
  assert.equal(r4?.status, 'failed');
  assert.match(store.getDeployment(lost)?.error ?? '', /no longer running in a container/);
  assert.equal(store.getRepository('ops/shiparr')?.lastCommit, sha, 'failures do not move the last good commit');
  assert.equal(listDeploymentsByStatus(store, 'running').length, 0);

  // The helper's compose output and exit code (left in the data directory) decide first, and end up in the log.
  const dataPath = path.join(dirs.dataDir, 'helper-data');
  const helperFailed = open(sha);
  const files = helperFiles(dataPath, helperFailed);
  await mkdir(files.dir, { recursive: true });
  await writeFile(files.log, 'Container x Creating\nError response from daemon: No such image: nope:1\n');
  await writeFile(files.exit, '1\n');
  const [r5] = await finaliseSelfUpdates({ store, self, docker: fakeDocker({ [ID]: {} }), log, dataPath });
  assert.equal(r5?.status, 'failed');
  assert.match(store.getDeployment(helperFailed)?.error ?? '', /COMPOSE_UP_FAILED.*exit 1.*No such image: nope:1/);
  assert.equal(store.getDeployment(helperFailed)?.stage, 'applying');
  assert.match(
    store.getDeploymentLogs(helperFailed) ?? '',
    /self-update helper \(compose output\):\nContainer x Creating/,
  );
  assert.deepEqual(await readHelperResult(dataPath, helperFailed), { exitCode: null, output: '' }, 'files removed');

  const helperOk = open(sha);
  await writeFile(helperFiles(dataPath, helperOk).exit, '0\n');
  const [r6] = await finaliseSelfUpdates({ store, self, docker: fakeDocker({ [ID]: {} }), log, dataPath });
  assert.equal(r6?.status, 'success');
});

test('the helper container: our image, our mounts and groups, labelled, not a compose container; env by name only', () => {
  const args = helperRunArgs({
    self: {
      containerId: ID,
      image: 'sha256:1111',
      groupAdd: ['998'],
      networkMode: 'host',
      envNames: ['PATH', 'TOKEN', 'GONE'],
    },
    deploymentId: 42,
    cwd: '/srv/shiparr/deployments/shiparr/shiparr',
    logFile: '/data/self-update/42.log',
    compose: ['docker', 'compose', '-p', 'shiparr', 'up', '-d'],
    dockerHost: 'unix:///var/run/docker.sock',
    env: { TOKEN: 'secret', PATH: '/bin' },
  });
  const line = args.join(' ');
  assert.equal(helperName(42), 'shiparr-self-update-42');
  assert.match(line, /^run -d --rm --name shiparr-self-update-42 /);
  assert.match(line, new RegExp(`--label ${HELPER_LABEL}=42 --volumes-from ${ID} --group-add 998 --network host`));
  assert.match(line, / -e TOKEN -e DOCKER_HOST=unix:\/\/\/var\/run\/docker.sock /);
  assert.doesNotMatch(line, /secret|-e PATH|GONE|com\.docker\.compose/);
  assert.match(line, / -w \/srv\/shiparr\/deployments\/shiparr\/shiparr --entrypoint sh sha256:1111 -c /);
  assert.deepEqual(args.slice(-8), [
    'sh',
    '/data/self-update/42.log',
    'docker',
    'compose',
    '-p',
    'shiparr',
    'up',
    '-d',
  ]);
});

test('a deployment of our own compose project is flagged selfUpdate before compose runs; others are not', async (t) => {
  const dirs = await tempDirs(t, 'selfflag');
  for (const [name, project] of [
    ['me', 'shiparr-self'],
    ['app', 'app'],
  ]) {
    await writeFile(
      path.join(dirs.configDir, `${name}.yaml`),
      `project: ${name}\nrepositories:\n  r:\n    url: http://127.0.0.1:1/${name}.git\n    compose_project: ${project}\n    check_interval: 3600\n    rollback: false\n`,
    );
  }
  const store = Store.open(path.join(dirs.dataDir, 'shiparr.db'));
  const flaggedAtCompose: Record<string, boolean> = {};
  const commit = 'c'.repeat(40);
  // Stub worker tasks (the git server/engine are not the point here); the store and supervisor are real.
  const runTask = (async (name: string, input: { project?: string }) => {
    switch (name) {
      case 'git-check':
        return { ok: true, durationMs: 1, commit };
      case 'git-sync':
        return { ok: true, durationMs: 1, commit, cloned: false };
      case 'compose-up': {
        const open = listDeploymentsByStatus(store, 'running').filter(
          (d) => d.repoKey === (input.project === 'app' ? 'app/r' : 'me/r'),
        );
        flaggedAtCompose[input.project ?? ''] = open.length === 1 && open[0]!.selfUpdate;
        return { ok: true, durationMs: 1, output: '' };
      }
      default:
        return { ok: true, durationMs: 1, output: '' };
    }
  }) as unknown as RunTask;
  const loadConfig = () => loadProjects(dirs.configDir, { env: {}, dataPath: dirs.dataDir });
  const supervisor = new Supervisor({
    store,
    runTask,
    verify: async () => ({ ok: true, summary: 'ok' }),
    notify: async () => [],
    loadConfig,
    log,
    maxConcurrentDeploys: 2,
    secrets: {},
    isSelf: selfMatcher({ containerId: ID, composeProject: 'shiparr-self' }),
  });
  supervisor.start(await loadConfig());
  t.after(async () => {
    await supervisor.stop(1_000);
    store.close();
  });
  await until(
    () => lastSuccessfulDeployment(store, 'me/r') && lastSuccessfulDeployment(store, 'app/r'),
    'both boot deploys',
    10_000,
  );
  assert.deepEqual(flaggedAtCompose, { 'shiparr-self': true, app: false });
  assert.equal(lastSuccessfulDeployment(store, 'me/r')?.selfUpdate, true);
  assert.equal(lastSuccessfulDeployment(store, 'app/r')?.selfUpdate, false);
  assert.match(store.getDeploymentLogs(lastSuccessfulDeployment(store, 'me/r')!.id) ?? '', /self-update/);
});
