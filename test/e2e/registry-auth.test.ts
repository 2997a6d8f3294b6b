/**
 * @module End to end: compose pulls from a private (htpasswd) registry. A real daemon deploys three repositories whose
 * image exists only in Debian's docker-registry on 127.0.0.1 (removed from the engine first): one with the right
 * credentials in its project file's `registries` (deploys), one with wrong ones (fails with REGISTRY_AUTH naming the
 * registry; the password appears nowhere), one without `registries` that uses SHIPARR_DOCKER_CONFIG (deploys). The
 * user's ~/.docker/config.json is neither created nor changed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Deployment } from '../../src/domain/types.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { docker, removeProjectContainers, composeDown, webServiceCompose } from '../helpers/docker.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import { buildTestImage, requireRegistry, startRegistry, type RegistryServer } from '../helpers/registry.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';

const USER = 'shiparr-puller';
const PASSWORD = 'e2e-reg-pass-91c4d7a2b8';
const WRONG = 'e2e-wrong-pass-3f60e1c9d5';
registerTestSecrets('registry auth e2e', [PASSWORD, WRONG, Buffer.from(`${USER}:${PASSWORD}`).toString('base64')]);

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const USER_CONFIG = path.join(process.env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker'), 'config.json');

async function snapshot(file: string): Promise<string | null> {
  return existsSync(file) ? readFile(file, 'utf8') : null;
}

test(
  'compose pulls from a private registry with project-file and Docker-config credentials',
  { timeout: 480_000 },
  async (t) => {
    if (!(await requireRegistry(t))) return;
    const userConfigBefore = await snapshot(USER_CONFIG);
    const image = await buildTestImage('e2e-private', (fn) => void cleanups.push(fn));
    const reg: RegistryServer = await startRegistry({ auth: { username: USER, password: PASSWORD } });
    cleanups.push(() => reg.stop());
    const git: GitServer = await startGitServer();
    cleanups.push(() => git.close());

    const names = ['good', 'wrong', 'dockercfg'] as const;
    const projects = Object.fromEntries(names.map((n) => [n, `e2e-regauth-${n}-${process.pid}`]));
    for (const n of names) {
      await reg.push(image, `private/${n}:1`);
      cleanups.push(async () => {
        await composeDown(projects[n]!);
        await removeProjectContainers(projects[n]!);
      });
    }
    // Only the registry has the images now: every deploy has to pull.
    for (const n of names) {
      const ref = `${reg.host}/private/${n}:1`;
      const digests = await docker(['image', 'inspect', '--format', '{{join .RepoDigests "\\n"}}', ref]);
      await docker([
        'rmi',
        ref,
        ...digests.stdout.split('\n').filter((d) => d.startsWith(`${reg.host}/private/${n}@`)),
      ]);
      assert.notEqual((await docker(['image', 'inspect', ref])).code, 0, `${ref} is still on the engine`);
      const yaml = webServiceCompose({ image: ref, healthy: true, marker: n }).replace(
        'pull_policy: never',
        'pull_policy: missing',
      );
      await git.createRepo(n, { 'compose.yaml': yaml });
    }

    const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-dockercfg-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const dockerConfig = path.join(dir, 'config.json');
    await writeFile(
      dockerConfig,
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }),
    );

    const projectFile = (n: string, registries: string) => `project: ${n}
repositories:
  app:
    url: ${git.repoUrl(n)}
    check_interval: 3600
    compose_project: ${projects[n]}
    rollback: false
    healthcheck: { timeout: 60, interval: 1, retries: 1 }
${registries}`;
    const daemon: TestDaemon = await startTestDaemon({
      env: { SHIPARR_DOCKER_CONFIG: dockerConfig, GOOD_REGISTRY_PASSWORD: PASSWORD },
      projects: {
        'good.yaml': projectFile(
          'good',
          `registries:\n  "${reg.host}":\n    username: ${USER}\n    password: "\${GOOD_REGISTRY_PASSWORD}"\n`,
        ),
        'wrong.yaml': projectFile(
          'wrong',
          `registries:\n  "${reg.host}":\n    username: ${USER}\n    password: ${WRONG}\n`,
        ),
        'dockercfg.yaml': projectFile('dockercfg', ''),
      },
    });
    cleanups.push(() => daemon.dispose());

    const finished = (key: string): Promise<Deployment> =>
      until(
        () =>
          daemon.store
            .listDeployments(key, { limit: 5 })
            .items.find((d) => d.status !== 'pending' && d.status !== 'running'),
        `a finished deployment of ${key}`,
        300_000,
        250,
      );
    const [good, wrong, cfg] = await Promise.all([
      finished('good/app'),
      finished('wrong/app'),
      finished('dockercfg/app'),
    ]);
    assert.equal(good.status, 'success', JSON.stringify(good));
    assert.equal(cfg.status, 'success', JSON.stringify(cfg));
    assert.equal(wrong.status, 'failed', JSON.stringify(wrong));
    assert.match(wrong.error ?? '', new RegExp(`registry ${reg.host.replace(/\./g, '\\.')} refused the credentials`));

    // The pulled images run; the password is nowhere in rows, logs or API answers.
    for (const n of ['good', 'dockercfg']) {
      const ps = await docker([
        'ps',
        '--filter',
        `label=com.docker.compose.project=${projects[n]}`,
        '--format',
        '{{.Image}}',
      ]);
      assert.equal(ps.stdout.trim(), `${reg.host}/private/${n}:1`);
    }
    const texts = [JSON.stringify([good, wrong, cfg])];
    for (const key of ['good/app', 'wrong/app', 'dockercfg/app']) {
      const res = await fetch(`${daemon.url}/api/repositories/${encodeURIComponent(key)}/deployments`);
      texts.push(await res.text());
      for (const d of [good, wrong, cfg]) texts.push(daemon.store.getDeploymentLogs(d.id) ?? '');
    }
    for (const s of [PASSWORD, WRONG])
      assert.ok(!texts.some((x) => x.includes(s)), 'a registry password leaked into a row, a log or the API');
    // Private DOCKER_CONFIG dirs are gone; the user's config was not touched.
    assert.equal(await snapshot(USER_CONFIG), userConfigBefore);
    const scratch = path.join(daemon.dataDir, 'scratch');
    assert.deepEqual(existsSync(scratch) ? await readdir(scratch) : [], []);
  },
);
