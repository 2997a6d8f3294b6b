/** @module verifyProject against real containers: healthy, unhealthy, one-shot, crash, restart loop, timeout, URL. */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { createDocker, verifyProject } from '../../../src/compose/verify.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';
import {
  BUSYBOX_IMAGE,
  cleanupProject,
  composeDir,
  ensureBusyboxImage,
  freePort,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../../helpers/docker.ts';

const docker = createDocker();

/** Brings a compose file up under a fresh project (cleaned up after the test); returns the project name. */
async function upProject(t: TestContext, prefix: string, yaml: string): Promise<string> {
  await ensureBusyboxImage();
  const project = uniqueProjectName(prefix);
  cleanupProject(t, project);
  const cwd = await composeDir(t, yaml);
  const r = await composeUp({
    cwd,
    project,
    files: [],
    pull: 'never',
    build: false,
    removeOrphans: true,
    timeoutMs: 120_000,
  });
  assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}\n${r.output}`);
  return project;
}

/** One busybox service running `sh -c <script>`, with optional extra YAML lines (indented 4). */
function shellService(name: string, script: string, extra: string[] = []): string[] {
  return [
    `  ${name}:`,
    `    image: ${JSON.stringify(BUSYBOX_IMAGE)}`,
    '    pull_policy: never',
    '    init: true',
    `    command: ["sh", "-c", ${JSON.stringify(script)}]`,
    ...extra.map((l) => `    ${l}`),
  ];
}

// Each test owns its compose project, so they can run side by side.
describe('verifyProject', { concurrency: true }, () => {
  test('healthy web service + one-shot job that exited 0 → ok', async (t) => {
    if (!(await requireDocker(t))) return;
    const yaml = `${webServiceCompose({ image: BUSYBOX_IMAGE, healthy: true })}${shellService('migrate', 'echo migrated').join('\n')}\n`;
    const project = await upProject(t, 'v-ok', yaml);
    const r = await verifyProject({ docker, project, timeoutMs: 60_000, pollMs: 250 });
    assert.equal(r.ok, true, r.ok ? '' : r.message);
    const byService = Object.fromEntries(r.containers.map((c) => [c.service, c]));
    assert.equal(byService['web']?.health, 'healthy');
    assert.equal(byService['migrate']?.state, 'exited');
    assert.equal(byService['migrate']?.exitCode, 0);
  });

  test('unhealthy container → VERIFY_UNHEALTHY naming it', async (t) => {
    if (!(await requireDocker(t))) return;
    const project = await upProject(t, 'v-unhealthy', webServiceCompose({ image: BUSYBOX_IMAGE, healthy: false }));
    const r = await verifyProject({ docker, project, timeoutMs: 60_000, pollMs: 250 });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_UNHEALTHY');
    assert.equal(r.transient, false);
    assert.match(r.message, new RegExp(`${project}-web-1 \\(running, health unhealthy`));
  });

  test('container exiting non-zero → VERIFY_EXITED with the exit code', async (t) => {
    if (!(await requireDocker(t))) return;
    const project = await upProject(t, 'v-exit', ['services:', ...shellService('job', 'exit 3')].join('\n'));
    const r = await verifyProject({ docker, project, timeoutMs: 60_000, pollMs: 250 });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_EXITED');
    assert.match(r.message, new RegExp(`${project}-job-1 \\(exited, exit code 3\\)`));
  });

  test('a service without healthcheck that dies a second after start is not declared ready', async (t) => {
    if (!(await requireDocker(t))) return;
    const project = await upProject(t, 'v-late', ['services:', ...shellService('late', 'sleep 1; exit 4')].join('\n'));
    const r = await verifyProject({ docker, project, timeoutMs: 60_000, pollMs: 200, stableMs: 3_000 });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_EXITED');
    assert.match(r.message, /exit code 4/);
  });

  test('crash loop under restart: always → VERIFY_RESTART_LOOP', async (t) => {
    if (!(await requireDocker(t))) return;
    const project = await upProject(
      t,
      'v-loop',
      ['services:', ...shellService('crash', 'sleep 0.3; exit 1', ['restart: always'])].join('\n'),
    );
    const r = await verifyProject({ docker, project, timeoutMs: 60_000, pollMs: 200 });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_RESTART_LOOP');
    assert.match(r.message, new RegExp(`${project}-crash-1`));
  });

  test('still starting at the timeout → VERIFY_TIMEOUT naming the container and its state', async (t) => {
    if (!(await requireDocker(t))) return;
    // A failing check inside a long start_period keeps the container in "starting".
    const project = await upProject(
      t,
      'v-slow',
      [
        'services:',
        ...shellService('slow', 'exec sleep 3600', [
          'healthcheck:',
          '  test: ["CMD-SHELL", "exit 1"]',
          '  interval: 1s',
          '  start_period: 300s',
        ]),
      ].join('\n'),
    );
    const r = await verifyProject({ docker, project, timeoutMs: 2_000, pollMs: 250 });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_TIMEOUT');
    assert.match(r.message, new RegExp(`not ready after 2 s: ${project}-slow-1 \\(running, health starting\\)`));
  });

  test('URL check: 2xx passes; 404 and a closed port fail after the retries', async (t) => {
    if (!(await requireDocker(t))) return;
    const port = await freePort();
    const project = await upProject(
      t,
      'v-url',
      webServiceCompose({ image: BUSYBOX_IMAGE, healthy: true, marker: 'url-test', hostPort: port }),
    );
    const ok = await verifyProject({
      docker,
      project,
      timeoutMs: 60_000,
      pollMs: 250,
      url: `http://127.0.0.1:${port}/`,
      retries: 20,
      intervalMs: 250,
    });
    assert.equal(ok.ok, true, ok.ok ? '' : ok.message);

    const notFound = await verifyProject({
      docker,
      project,
      timeoutMs: 60_000,
      pollMs: 250,
      url: `http://127.0.0.1:${port}/missing`,
      retries: 2,
      intervalMs: 100,
    });
    assert.ok(!notFound.ok);
    assert.equal(notFound.code, 'VERIFY_URL_FAILED');
    assert.match(notFound.message, /after 2 attempt\(s\): HTTP 404/);

    const closed = await freePort();
    const refused = await verifyProject({
      docker,
      project,
      timeoutMs: 60_000,
      url: `http://127.0.0.1:${closed}/`,
      retries: 2,
      intervalMs: 100,
    });
    assert.ok(!refused.ok);
    assert.equal(refused.code, 'VERIFY_URL_FAILED');
    assert.match(refused.message, /ECONNREFUSED/);
  });

  test('no containers for the project → VERIFY_NO_CONTAINERS', async (t) => {
    if (!(await requireDocker(t))) return;
    const project = uniqueProjectName('v-none');
    const r = await verifyProject({ docker, project, timeoutMs: 5_000 });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_NO_CONTAINERS');
    assert.match(r.message, new RegExp(project));
  });

  test('an aborted signal stops verification', async (t) => {
    if (!(await requireDocker(t))) return;
    const r = await verifyProject({
      docker,
      project: uniqueProjectName('v-abort'),
      timeoutMs: 5_000,
      signal: AbortSignal.abort(),
    });
    assert.ok(!r.ok);
    assert.equal(r.code, 'VERIFY_ABORTED');
  });
});
