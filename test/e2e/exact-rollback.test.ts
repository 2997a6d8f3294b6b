/**
 * @module End to end: exact rollback with the real daemon, a real git server and the real Docker engine. Two locally
 * built images (A and B, busybox with different labels) share the tag the compose file names; a rollback runs the
 * image the target deployment recorded even after the tag moved, on a depth-1 checkout too (the target commit fetched
 * by its hash), the automatic rollback after a failed verify restores the last good deployment's images, the next
 * normal deploy drops the pins, an image gone from the engine fails the rollback naming service and image, and the
 * API refuses unknown, foreign and failed target deployments.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  docker,
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { disposeE2e, e2eRepoYaml } from '../helpers/e2e.ts';
import type { Deployment } from '../../src/domain/types.ts';

const KEY = 'exact/web';
const OTHER = 'exact/other';
const FINISHED = new Set(['success', 'failed', 'rolled_back', 'interrupted', 'skipped']);

describe('exact rollback end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let project = '';
  let otherProject = '';
  let tmp = '';
  let app = '';
  const ids: Record<string, string> = {};
  const shas: Record<string, string> = {};
  const deployments: Record<string, Deployment> = {};

  const projectYaml = () =>
    `project: exact\nrepositories:\n${e2eRepoYaml('web', { url: git.repoUrl('web'), composeProject: project })}` +
    e2eRepoYaml('other', {
      url: git.repoUrl('other'),
      composeProject: otherProject,
      checkInterval: 3600,
      applyTimeout: null,
    });
  const rows = (key = KEY) => daemon!.store.listDeployments(key, { limit: 100 }).items;
  const logsOf = (id: number) => daemon!.store.getDeploymentLogs(id) ?? '';
  const finished = (id: number) =>
    until(
      () => {
        const d = daemon!.store.getDeployment(id);
        return d && FINISHED.has(d.status) ? d : null;
      },
      `deployment ${id} to finish`,
      120_000,
    );
  const finishedOf = (commit: string) =>
    until(
      () => rows().find((r) => r.commit === commit && FINISHED.has(r.status) && r.trigger !== 'rollback'),
      `the deployment of ${commit.slice(0, 12)}`,
      120_000,
    );
  /** The image id the web service's running container was created from. */
  const runningImage = async (): Promise<string> => {
    const ps = await docker([
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--filter',
      'label=com.docker.compose.service=web',
    ]);
    const id = ps.stdout.trim().split('\n')[0] ?? '';
    if (!id) return '';
    return (await docker(['inspect', '-f', '{{.Image}}', id])).stdout.trim();
  };
  const tagApp = async (image: string) => {
    const r = await docker(['tag', image, `${app}:latest`]);
    assert.equal(r.code, 0, r.output);
  };
  const imageId = async (ref: string) => (await docker(['image', 'inspect', '-f', '{{.Id}}', ref])).stdout.trim();
  const post = (pathname: string, body?: unknown) =>
    fetch(`${daemon!.url}${pathname}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const rollback = async (body: unknown) => {
    const id = daemon!.supervisor.get(KEY)!.id;
    const r = await post(`/api/repositories/${id}/rollback`, body);
    const json = (await r.json()) as {
      deploymentId: number;
      status: string;
      error?: { code: string; message: string };
    };
    return { status: r.status, json };
  };
  const compose = (marker: string, healthy = true) => webServiceCompose({ image: `${app}:latest`, healthy, marker });
  const pinFile = () => path.join(daemon!.dataDir, 'generated', 'exact', 'web', 'image-pins.json');

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    const base = await ensureBusyboxImage();
    project = uniqueProjectName('exact-web');
    otherProject = uniqueProjectName('exact-other');
    app = `shiparr-test/${uniqueProjectName('exact-app')}`;
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-exact-'));
    // Three images that differ only by a label: A, B and C (C is removed later to show a missing image).
    for (const v of ['a', 'b', 'c']) {
      await writeFile(path.join(tmp, `Dockerfile.${v}`), `FROM ${base}\nLABEL shiparr.test.variant=${v}\n`);
      const r = await docker(['build', '-q', '-t', `${app}:${v}`, '-f', path.join(tmp, `Dockerfile.${v}`), tmp], {
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
      });
      assert.equal(r.code, 0, `docker build ${v}: ${r.output}`);
      ids[v] = await imageId(`${app}:${v}`);
    }
    assert.equal(new Set(Object.values(ids)).size, 3, 'three distinct images');
    await tagApp(`${app}:a`);
    shas.c1 = await git.createRepo('web', { 'compose.yaml': compose('c1') });
    await git.createRepo('other', {
      'compose.yaml': webServiceCompose({ image: base, healthy: true, marker: 'other' }),
    });
    daemon = await startTestDaemon({ projects: { 'exact.yaml': projectYaml() } });
  });

  after(async () => {
    await disposeE2e({ daemon, projects: [project, otherProject], git, tmp });
    if (app) {
      await docker(['rmi', '-f', `${app}:latest`, `${app}:a`, `${app}:b`, `${app}:c`]);
      const left = Object.values(ids);
      if (left.length) await docker(['rmi', '-f', ...left]);
    }
  });

  test('a successful deploy records the image each service runs (image A behind app:latest)', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await finishedOf(shas.c1!);
    assert.equal(d.status, 'success');
    assert.deepEqual(d.serviceImages, [{ service: 'web', image: `${app}:latest`, imageId: ids.a, digest: null }]);
    assert.match(logsOf(d.id), /verifying: images recorded: web=/);
    assert.equal(await runningImage(), ids.a);
    deployments.first = d;
  });

  test('after the tag moved to B and a new commit deployed B, a rollback to the first deployment runs A again', async (t) => {
    if (!(await requireDocker(t))) return;
    await tagApp(`${app}:b`);
    shas.c2 = await git.commit('web', { 'compose.yaml': compose('c2') });
    const d2 = await finishedOf(shas.c2);
    assert.equal(d2.status, 'success');
    assert.equal(await runningImage(), ids.b);
    assert.equal(d2.serviceImages?.[0]?.imageId, ids.b);

    const r = await rollback({ deploymentId: deployments.first!.id });
    assert.equal(r.status, 202);
    assert.equal(r.json.status, 'pending');
    const d = await finished(r.json.deploymentId);
    assert.equal(d.status, 'success', d.error ?? '');
    assert.equal(d.trigger, 'rollback');
    assert.equal(d.commit, shas.c1);
    assert.equal(await imageId(`${app}:latest`), ids.b, 'the tag still names B');
    assert.equal(await runningImage(), ids.a, 'the container runs the recorded image A');
    assert.match(logsOf(d.id), new RegExp(`exact rollback to deployment ${deployments.first!.id}: pinned web=`));
    // The rollback row records the compose reference, not the pin, and A's id.
    assert.deepEqual(d.serviceImages, [{ service: 'web', image: `${app}:latest`, imageId: ids.a, digest: null }]);
    const pins = JSON.parse(await readFile(pinFile(), 'utf8')) as { services: Record<string, { image: string }> };
    assert.equal(pins.services.web?.image, ids.a);
    deployments.rollback = d;
  });

  test('an automatic rollback after a failed verify restores the recorded images of the last good deployment', async (t) => {
    if (!(await requireDocker(t))) return;
    shas.bad = await git.commit('web', { 'compose.yaml': compose('bad', false) });
    const d = await finishedOf(shas.bad);
    assert.equal(d.status, 'rolled_back', d.error ?? '');
    assert.equal(d.rolledBackTo, shas.c1);
    const logs = logsOf(d.id);
    assert.match(logs, new RegExp(`exact rollback to deployment ${deployments.rollback!.id}: pinned web=`));
    await until(async () => (await runningImage()) === ids.a, 'image A running again', 30_000);
    deployments.bad = d;
  });

  test('the next normal deploy drops the pins: app:latest (B) runs, the pin file is gone', async (t) => {
    if (!(await requireDocker(t))) return;
    shas.c3 = await git.commit('web', { 'compose.yaml': compose('c3') });
    const d = await finishedOf(shas.c3);
    assert.equal(d.status, 'success', d.error ?? '');
    assert.equal(await runningImage(), ids.b);
    assert.match(logsOf(d.id), /image pins of the last rollback dropped/);
    assert.equal(existsSync(pinFile()), false);
    assert.equal(d.serviceImages?.[0]?.imageId, ids.b);
  });

  test('on a depth-1 checkout without the target commit, the commit is fetched by its hash', async (t) => {
    if (!(await requireDocker(t))) return;
    // A fresh depth-1 clone of the head: c1 is not in it.
    const localPath = daemon!.supervisor.repoConfig(KEY)!.localPath;
    await rm(localPath, { recursive: true, force: true });
    const { deploymentId } = daemon!.supervisor.deploy(KEY, { trigger: 'api' });
    const fresh = await finished(deploymentId);
    assert.equal(fresh.status, 'success', fresh.error ?? '');
    assert.match(logsOf(fresh.id), /fresh clone/);
    assert.ok(existsSync(path.join(localPath, '.git', 'shallow')), 'the checkout is shallow');

    const r = await rollback({ commit: shas.c1!.slice(0, 10) });
    assert.equal(r.status, 202);
    const d = await finished(r.json.deploymentId);
    assert.equal(d.status, 'success', d.error ?? '');
    assert.equal(d.commit, shas.c1);
    const logs = logsOf(d.id);
    assert.match(logs, /is not in the shallow history: fetched by its hash/);
    // {commit} → the newest successful deployment of that commit: the manual rollback row.
    assert.match(logs, new RegExp(`exact rollback to deployment ${deployments.rollback!.id}: pinned`));
    assert.equal(await runningImage(), ids.a);
  });

  test('a rollback to a deployment whose image is gone fails, naming the service and the image', async (t) => {
    if (!(await requireDocker(t))) return;
    await tagApp(`${app}:c`);
    shas.c4 = await git.commit('web', { 'compose.yaml': compose('c4') });
    const withC = await finishedOf(shas.c4);
    assert.equal(withC.status, 'success', withC.error ?? '');
    assert.equal(withC.serviceImages?.[0]?.imageId, ids.c);
    await tagApp(`${app}:b`);
    shas.c5 = await git.commit('web', { 'compose.yaml': compose('c5') });
    assert.equal((await finishedOf(shas.c5)).status, 'success');
    assert.equal(await runningImage(), ids.b);
    // C is no longer tagged nor used by a container: remove it from the engine.
    const rmi = await docker(['rmi', `${app}:c`]);
    assert.equal(rmi.code, 0, rmi.output);
    assert.notEqual((await docker(['image', 'inspect', ids.c!])).code, 0, 'image C is gone');

    const r = await rollback({ deploymentId: withC.id });
    assert.equal(r.status, 202);
    const d = await finished(r.json.deploymentId);
    assert.notEqual(d.status, 'success');
    assert.match(d.error ?? '', /ROLLBACK_IMAGE_MISSING/);
    assert.match(d.error ?? '', new RegExp(`service web: ${app}:latest \\(${ids.c}\\)`));
    assert.equal(await runningImage(), ids.b, 'what ran before keeps running');
  });

  test('API: unknown deployment 404, another repository’s deployment 404, an unsuccessful one 409, both fields 422', async (t) => {
    if (!(await requireDocker(t))) return;
    const other = await until(() => rows(OTHER).find((r) => FINISHED.has(r.status)), 'the other deployment', 60_000);
    const unknown = await rollback({ deploymentId: 999_999 });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error?.code, 'NOT_FOUND');
    assert.match(unknown.json.error?.message ?? '', /deployment 999999 not found in repository exact\/web/);
    const foreign = await rollback({ deploymentId: other.id });
    assert.equal(foreign.status, 404);
    const failed = await rollback({ deploymentId: deployments.bad!.id });
    assert.equal(failed.status, 409);
    assert.match(
      failed.json.error?.message ?? '',
      /ended rolled_back: only a successful deployment can be rolled back to/,
    );
    const both = await rollback({ deploymentId: deployments.first!.id, commit: shas.c1 });
    assert.equal(both.status, 422);
    const bad = await rollback({ deploymentId: 'x' });
    assert.equal(bad.status, 422);
    assert.match(bad.json.error?.message ?? '', /deploymentId must be a positive integer/);
  });
});
