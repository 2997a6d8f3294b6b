/**
 * @module the compose-up task and verifyProject against the real Docker engine, through the
 * shared harness (test/helpers/docker.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { createDocker, verifyProject } from '../../../src/compose/verify.ts';
import { exec } from '../../../src/lib/exec.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';
import {
  cleanupProject,
  composeDir,
  docker,
  ensureBusyboxImage,
  MARKER_LABEL,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../../helpers/docker.ts';

const up = { pull: 'never' as const, build: false, removeOrphans: true, timeoutMs: 120_000 };

/**
 * A socket file nobody listens on (connect → ECONNREFUSED), like a crashed daemon leaves behind: a child process
 * binds it and dies by SIGKILL, so the file is not unlinked.
 */
async function closedSocket(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-sock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'docker.sock');
  const script = `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`;
  const r = await exec(process.execPath, ['-e', script], { timeoutMs: 10_000 });
  assert.equal(r.signal, 'SIGKILL');
  assert.equal((await stat(sock)).isSocket(), true);
  return sock;
}

test('smoke: busybox image → compose up → verify', async (t) => {
  if (!(await requireDocker(t))) return;
  const image = await ensureBusyboxImage();
  const project = uniqueProjectName('smoke');
  cleanupProject(t, project);
  const cwd = await composeDir(t, webServiceCompose({ image, healthy: true, marker: 'commit-a' }));

  const r = await composeUp({ cwd, project, files: [], ...up });
  assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}\n${r.output}`);

  const v = await verifyProject({ docker: createDocker(), project, timeoutMs: 60_000, pollMs: 250 });
  assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
  assert.equal(v.containers.length, 1);
  assert.equal(v.containers[0]?.service, 'web');
  assert.equal(v.containers[0]?.health, 'healthy');

  const label = await docker([
    'inspect',
    '--format',
    `{{index .Config.Labels "${MARKER_LABEL}"}}`,
    v.containers[0]?.id ?? '',
  ]);
  assert.equal(label.stdout.trim(), 'commit-a');
});

test('compose-up of an invalid compose file → COMPOSE_UP_FAILED with compose error text', async (t) => {
  if (!(await requireDocker(t))) return;
  const project = uniqueProjectName('invalid');
  cleanupProject(t, project);
  const cwd = await composeDir(
    t,
    'services:\n  web:\n    image: shiparr-test/busybox:latest\n    pull_policy: never\n    init: true\n    ports: "not-a-list"\n    bogus_key: 1\n',
  );
  const r = await composeUp({ cwd, project, files: [], ...up });
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_UP_FAILED');
  assert.equal(r.transient, false);
  assert.match(r.output ?? '', /bogus_key|ports/);
  assert.match(r.message, /exit 1/);
});

test('compose-up with a missing compose file names the file and is not "engine unreachable"', async (t) => {
  if (!(await requireDocker(t))) return;
  const project = uniqueProjectName('missing');
  const cwd = await composeDir(t, 'services: {}\n');
  const r = await composeUp({ cwd, project, files: ['nope.yaml'], ...up });
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_UP_FAILED');
  assert.match(r.output ?? '', /nope\.yaml/);
});

test('DOCKER_HOST pointing at a closed socket → DOCKER_UNREACHABLE, transient, for compose-up and verify', async (t) => {
  if (!(await requireDocker(t))) return;
  const sock = await closedSocket(t);
  const dockerHost = `unix://${sock}`;
  const cwd = await composeDir(t, webServiceCompose({ image: 'shiparr-test/busybox:latest', healthy: true }));

  const r = await composeUp({ cwd, project: uniqueProjectName('down'), files: [], ...up, dockerHost });
  assert.ok(!r.ok);
  assert.equal(r.code, 'DOCKER_UNREACHABLE');
  assert.equal(r.transient, true);
  assert.match(r.message, /Cannot connect to the Docker daemon/);

  const v = await verifyProject({ docker: createDocker(dockerHost), project: 'whatever', timeoutMs: 5_000 });
  assert.ok(!v.ok);
  assert.equal(v.code, 'DOCKER_UNREACHABLE');
  assert.equal(v.transient, true);

  const tcp = await verifyProject({ docker: createDocker('tcp://127.0.0.1:1'), project: 'whatever', timeoutMs: 5_000 });
  assert.ok(!tcp.ok);
  assert.equal(tcp.code, 'DOCKER_UNREACHABLE');

  // A missing socket file is the other common "engine down" shape.
  const gone = await composeUp({
    cwd,
    project: uniqueProjectName('down'),
    files: [],
    ...up,
    dockerHost: `unix://${sock}.missing`,
  });
  assert.ok(!gone.ok);
  assert.equal(gone.code, 'DOCKER_UNREACHABLE');
  const goneV = await verifyProject({
    docker: createDocker(`unix://${sock}.missing`),
    project: 'whatever',
    timeoutMs: 5_000,
  });
  assert.ok(!goneV.ok);
  assert.equal(goneV.code, 'DOCKER_UNREACHABLE');
  assert.equal(goneV.transient, true);
});

test('createDocker rejects DOCKER_HOST values it cannot use', () => {
  assert.throws(() => createDocker('ftp://x'), { code: 'DOCKER_HOST_INVALID' });
  assert.throws(() => createDocker('not a url'), { code: 'DOCKER_HOST_INVALID' });
  assert.equal(
    (createDocker('unix:///var/run/docker.sock').modem as { socketPath?: string }).socketPath,
    '/var/run/docker.sock',
  );
  const tcp = createDocker('tcp://10.0.0.5:2376').modem as { host?: string; port?: string; protocol?: string };
  assert.deepEqual([tcp.host, String(tcp.port), tcp.protocol], ['10.0.0.5', '2376', 'https']);
});
