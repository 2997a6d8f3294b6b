/**
 * @module Self-update ("uroboros") end to end with the real image: Shiparr runs from its own compose project, a
 * pushed change to that compose file makes it replace its own container (compose runs in a helper container that
 * outlives the old one), and the new container finalises the deployment. A second push with an image that does not
 * exist (pull_policy: never) fails before the old container is stopped: the old Shiparr reports `failed` itself.
 *
 * Builds the base images and the image of this run (like image.test.ts; minutes on a fresh machine). For local
 * iterations SHIPARR_TEST_IMAGE=<tag> runs against an image that already exists instead (it is not removed).
 * The container shares the host network to reach the git server on 127.0.0.1.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../../src/lib/exec.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  compose,
  docker,
  freePort,
  removeProjectContainers,
  requireDocker,
  uniqueProjectName,
} from '../helpers/docker.ts';
import { until } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOCKET = '/var/run/docker.sock';
const HELPER_LABEL = 'io.shiparr.self-update';
const tail = (s: string, n = 40): string => s.trimEnd().split('\n').slice(-n).join('\n');

type Row = { id: number; status: string; stage: string | null; error: string | null; commit: string | null };

describe('self-update of Shiparr from its own compose project', { concurrency: false }, () => {
  const runId = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const given = process.env['SHIPARR_TEST_IMAGE'];
  const tag = given ?? `shiparr-test/shiparr:self-${runId}`;
  const baseTag = `shiparr-test/base:self-${runId}`;
  const missingImage = `shiparr-test/missing:${runId}`;
  const project = uniqueProjectName('shiparr-self');
  const baseTags: string[] = [];
  let built = Boolean(given);
  let leftovers: string[] = [];
  let git: GitServer | undefined;
  let work = '';

  after(async () => {
    await removeProjectContainers(project);
    const helpers = (await docker(['ps', '-aq', '--filter', `label=${HELPER_LABEL}`])).stdout.split('\n');
    for (const h of helpers.filter(Boolean)) await docker(['rm', '-f', h]);
    if (!given && built) await docker(['rmi', '-f', tag]);
    for (const b of baseTags) await docker(['rmi', '-f', b]);
    if (leftovers.length) await docker(['rmi', ...leftovers]);
    await git?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the image builds', { timeout: 30 * 60_000 }, async (t) => {
    if (!(await requireDocker(t))) return;
    if (given) {
      assert.equal((await docker(['image', 'inspect', given])).code, 0, `${given} does not exist`);
      return;
    }
    const env = { ...process.env };
    if (!env['SHIPARR_BASE_IMAGE']) {
      baseTags.push(baseTag, `${baseTag}-build`);
      const base = await exec('bash', [path.join(ROOT, 'scripts/image/build-base.sh'), '--force'], {
        cwd: ROOT,
        timeoutMs: 600_000,
        env: { ...process.env, SHIPARR_BASE_TAG: baseTag },
      });
      assert.equal(base.code, 0, `build-base.sh failed:\n${tail(base.output)}`);
      env['SHIPARR_BASE_TAG'] = baseTag;
    }
    const dangling = async (): Promise<string[]> =>
      (await docker(['images', '-q', '--no-trunc', '--filter', 'dangling=true'])).stdout.split('\n').filter(Boolean);
    const before = new Set(await dangling());
    const b = await exec('bash', [path.join(ROOT, 'scripts/image/build.sh'), '-t', tag], {
      cwd: ROOT,
      timeoutMs: 900_000,
      env,
    });
    assert.equal(b.code, 0, `image build failed:\n${tail(b.output, 60)}`);
    built = true;
    leftovers = (await dangling()).filter((i) => !before.has(i));
  });

  test(
    'a pushed change replaces the container; a broken one fails and leaves Shiparr running',
    { timeout: 10 * 60_000 },
    async (t) => {
      if (!(await requireDocker(t))) return;
      assert.ok(built, 'the image was not built');
      git = await startGitServer();
      work = await mkdtemp(path.join(os.tmpdir(), 'shiparr-self-'));
      await chmod(work, 0o755);
      const configDir = path.join(work, 'config');
      const dataDir = path.join(work, 'data');
      const deployDir = path.join(work, 'deployments');
      const startDir = path.join(work, 'start');
      for (const d of [configDir, dataDir, deployDir, startDir]) await mkdir(d, { mode: 0o755 });
      // The image runs as uid 1000: its data and checkouts are its own.
      await chown(dataDir, 1000, 1000);
      await chown(deployDir, 1000, 1000);
      const gid = (await stat(SOCKET)).gid;
      const port = await freePort();
      const api = `http://127.0.0.1:${port}`;

      // Shiparr's own compose file, as the README's "Self-deploy" section describes it: absolute binds, the checkout
      // at the same path on host and container, the project name and container name fixed.
      const composeFile = (o: { marker: string; image?: string }) => `name: ${project}
services:
  shiparr:
    image: ${o.image ?? tag}
    pull_policy: never
    container_name: ${project}
    network_mode: host
    group_add: ["${gid}"]
    environment:
      SHIPARR_HOST: 127.0.0.1
      SHIPARR_PORT: "${port}"
      SHIPARR_TEST_MARKER: ${o.marker}
    healthcheck:
      interval: 2s
      start_period: 30s
    volumes:
      - ${SOCKET}:${SOCKET}
      - ${configDir}:/config:ro
      - ${dataDir}:/data
      - ${deployDir}:${deployDir}
`;
      const first = composeFile({ marker: 'one' });
      await git.createRepo('infra', { 'shiparr/docker-compose.yml': first });
      await writeFile(
        path.join(configDir, 'infra.yaml'),
        `project: infra
repositories:
  shiparr:
    url: ${git.repoUrl('infra')}
    path: shiparr/
    compose_files: [docker-compose.yml]
    compose_project: ${project}
    local_path: ${deployDir}/shiparr
    check_interval: 1
    pull: never
    rollback: false
    healthcheck: { timeout: 60 }
`,
      );
      await chmod(path.join(configDir, 'infra.yaml'), 0o644);

      const containerId = async (): Promise<string | null> => {
        const r = await docker(['inspect', '-f', '{{.Id}}', project]);
        return r.code === 0 ? r.stdout.trim() : null;
      };
      const logs = async (): Promise<string> => tail((await docker(['logs', project])).output, 60);
      const healthy = async (): Promise<boolean> => {
        try {
          return (await fetch(`${api}/api/health`, { signal: AbortSignal.timeout(2_000) })).status === 200;
        } catch {
          return false;
        }
      };
      const deployments = async (): Promise<Row[]> => {
        const r = await fetch(`${api}/api/repositories/${encodeURIComponent('infra/shiparr')}/deployments`, {
          signal: AbortSignal.timeout(5_000),
        });
        if (r.status !== 200) return [];
        return ((await r.json()) as { items: Row[] }).items;
      };
      const finished = (commit: string, what: string, ms: number): Promise<Row> =>
        until(
          async () =>
            (await deployments()).find((d) => d.commit === commit && !['pending', 'running'].includes(d.status)),
          what,
          ms,
          500,
        ).catch(async (err: unknown) => {
          throw new Error(`${String(err)}\nlogs:\n${await logs()}`);
        });
      const helpersLeft = async (): Promise<string> =>
        (await docker(['ps', '-aq', '--filter', `label=${HELPER_LABEL}`])).stdout.trim();

      // Started once by hand, from a copy of the compose file (README step 4).
      await writeFile(path.join(startDir, 'docker-compose.yml'), first);
      const up = await compose(startDir, ['-p', project, 'up', '-d']);
      assert.equal(up.code, 0, up.output);
      const oldId = await containerId();
      assert.ok(oldId);

      // The boot deployment goes through the helper too; compose has nothing to replace.
      const boot = await finished(git.head('infra', 'main'), 'the boot deployment', 180_000);
      assert.equal(boot.status, 'success', `${boot.stage ?? ''}: ${boot.error ?? ''}\n${await logs()}`);
      assert.equal(await containerId(), oldId, 'nothing changed: the container is the same');

      // 1. A pushed change to Shiparr's own compose file.
      const pushed = Date.now();
      const second = await git.commit('infra', { 'shiparr/docker-compose.yml': composeFile({ marker: 'two' }) });
      const newId = await until(
        async () => {
          const id = await containerId();
          return id && id !== oldId && (await healthy()) ? id : null;
        },
        'a new Shiparr container serving /api/health',
        180_000,
        250,
      ).catch(async (err: unknown) => {
        const ps = (await docker(['ps', '-a', '--filter', `name=${project}`])).output;
        throw new Error(`${String(err)}\n${ps}\nlogs:\n${await logs()}`);
      });
      t.diagnostic(`new container serving ${((Date.now() - pushed) / 1000).toFixed(1)} s after the push`);
      const done = await finished(second, 'the self-update deployment', 120_000);
      t.diagnostic(`self-update recorded ${done.status} ${((Date.now() - pushed) / 1000).toFixed(1)} s after the push`);
      assert.equal(done.status, 'success', `${done.stage ?? ''}: ${done.error ?? ''}\n${await logs()}`);
      assert.equal(done.commit, second);
      const env = (await docker(['inspect', '-f', '{{json .Config.Env}}', newId])).stdout;
      assert.match(env, /"SHIPARR_TEST_MARKER=two"/, 'the new container carries the new setting');
      assert.notEqual((await docker(['inspect', oldId])).code, 0, 'the old container is gone');
      assert.equal(await helpersLeft(), '', 'no helper container left behind');
      assert.equal(
        (
          await docker(['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.compose.project=${project}`])
        ).stdout.trim(),
        newId,
        'one container in the project',
      );

      // 2. A broken compose file: the replacement cannot be created, the running Shiparr stays and reports it.
      const broken = await git.commit('infra', {
        'shiparr/docker-compose.yml': composeFile({ marker: 'three', image: missingImage }),
      });
      const failed = await finished(broken, 'the broken self-update to finish', 180_000);
      assert.equal(failed.status, 'failed', `${failed.stage ?? ''}: ${failed.error ?? ''}`);
      t.diagnostic(`broken self-update: ${failed.error ?? ''}`);
      assert.match(
        failed.error ?? '',
        new RegExp(missingImage.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')),
        failed.error ?? '',
      );
      assert.equal(await containerId(), newId, 'the running Shiparr was not replaced');
      assert.ok(await healthy(), 'Shiparr still serves /api/health');
      assert.equal(await helpersLeft(), '', 'no helper container left behind');
    },
  );
});
