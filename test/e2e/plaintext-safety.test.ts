/**
 * @module End to end, real checkout and real Docker engine: a decrypted output path that already holds a file
 * Shiparr did not write (an untracked `.env` of the operator, a `.env` tracked by git) fails the deploy at
 * `decrypting` naming it, and the file survives; with `build: true` the decrypted env file stays out of the build
 * context (`COPY . /ctx` bakes no plaintext into the image) while the container still gets its values.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  composeDown,
  docker,
  dockerAvailable,
  ensureBusyboxImage,
  removeProjectContainers,
  requireDocker,
  uniqueProjectName,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { generateIdentity, sopsEncryptDotenv } from '../unit/secrets/helpers/sops-encrypt.ts';

const SECRET = 'plaintext-canary-5f1e';

function appCompose(image: string, marker: string): string {
  return `services:
  app:
    image: ${JSON.stringify(image)}
    pull_policy: never
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    environment:
      TOKEN: \${TOKEN:-unset}
      MARKER: ${marker}
`;
}

function repoYaml(name: string, url: string, project: string, extra: string[]): string {
  return [
    `  ${name}:`,
    `    url: ${url}`,
    '    check_interval: 1',
    `    compose_project: ${project}`,
    '    pull: never',
    '    healthcheck: { timeout: 30 }',
    ...extra.map((e) => `    ${e}`),
  ].join('\n');
}

describe('plaintext safety end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let image = '';
  let keyFile = '';
  let keyDir = '';
  const projects = {
    user: uniqueProjectName('pt-user'),
    tracked: uniqueProjectName('pt-tracked'),
    build: uniqueProjectName('pt-build'),
    kept: uniqueProjectName('pt-kept'),
  };
  const builtImage = `shiparr-test/plaintext-build:${projects.build}`;
  const me = generateIdentity();
  const enc = () => sopsEncryptDotenv([{ key: 'TOKEN', value: SECRET }], { recipients: [me.recipient] }).text;
  let projectFile = (_withEnvFile: boolean) => '';

  const rows = (key: string) => daemon!.store.listDeployments(key, { limit: 100 }).items;
  const finished = (key: string, n = 1) =>
    until(
      () => {
        const done = rows(key).filter((r) => r.status !== 'pending' && r.status !== 'running');
        return done.length >= n ? done[0] : undefined;
      },
      `deployment ${n} of ${key} to finish`,
      120_000,
    );
  const containerEnv = async (project: string) => {
    const id = (await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`])).stdout.trim();
    return (await docker(['exec', id, 'env'])).stdout;
  };
  const checkout = (name: string) => path.join(daemon!.dataDir, 'deployments', 'safety', name);

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    await git.createRepo('user', { 'compose.yaml': appCompose(image, 'u1'), '.env.enc': enc() });
    await git.createRepo('tracked', {
      'compose.yaml': appCompose(image, 't1'),
      '.env.enc': enc(),
      '.env': 'TOKEN=committed-by-someone\n',
    });
    await git.createRepo('kept', { 'compose.yaml': appCompose(image, 'k1'), '.env.enc': enc() });
    await git.createRepo('build', {
      'compose.yaml': `services:
  app:
    build: .
    image: ${builtImage}
    pull_policy: build
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    environment:
      TOKEN: \${TOKEN:-unset}
`,
      Dockerfile: `FROM ${image}\nCOPY . /ctx\n`,
      '.env.enc': enc(),
    });
    keyDir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-pt-key-'));
    keyFile = path.join(keyDir, 'age.key');
    await writeFile(keyFile, `${me.identity}\n`, { mode: 0o600 });
    projectFile = (withEnvFile) =>
      [
        'project: safety',
        'repositories:',
        // `user` starts without env_file: its first deploy creates the checkout, then the operator adds a .env.
        repoYaml('user', git.repoUrl('user'), projects.user, withEnvFile ? ['env_file: .env.enc'] : []),
        repoYaml('tracked', git.repoUrl('tracked'), projects.tracked, ['env_file: .env.enc']),
        repoYaml('build', git.repoUrl('build'), projects.build, ['env_file: .env.enc', 'build: true']),
        repoYaml('kept', git.repoUrl('kept'), projects.kept, ['env_file: .env.enc', 'keep_decrypted: true']),
        '',
      ].join('\n');
    daemon = await startTestDaemon({
      projects: { 'safety.yaml': projectFile(false) },
      env: { SOPS_AGE_KEY_FILE: keyFile },
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    for (const p of Object.values(projects)) {
      await composeDown(p);
      await removeProjectContainers(p);
    }
    if (image) await docker(['image', 'rm', '-f', builtImage]);
    await git?.close();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  test("an operator's untracked .env survives; the deploy fails at decrypting naming it", async (t) => {
    if (!(await requireDocker(t))) return;
    const first = await finished('safety/user');
    assert.equal(first.status, 'success', first.error ?? '');
    const own = path.join(checkout('user'), '.env');
    await writeFile(own, 'TOKEN=the-operators-own\n', { mode: 0o644 });

    await daemon!.writeProject('safety.yaml', projectFile(true));
    await daemon!.supervisor.reload();
    const d = await finished('safety/user', 2);
    assert.equal(d.status, 'failed');
    assert.equal(d.stage, 'decrypting');
    assert.match(d.error ?? '', /SOPS_OUTPUT_EXISTS/);
    assert.ok((d.error ?? '').includes(own), `the error names the file: ${d.error}`);
    assert.match(d.error ?? '', /set "output:" for \.env\.enc/);
    assert.equal(await readFile(own, 'utf8'), 'TOKEN=the-operators-own\n', 'not overwritten');
    // The run is over (cleanup included): the file is still there, and the first deployment keeps running.
    await until(() => daemon!.supervisor.get('safety/user')?.state === 'idle', 'the actor to settle', 30_000);
    assert.equal(await readFile(own, 'utf8'), 'TOKEN=the-operators-own\n', 'not deleted');
    assert.match(await containerEnv(projects.user), /^MARKER=u1$/m);
  });

  test('a .env tracked by git is never overwritten by the decrypted one', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await finished('safety/tracked');
    assert.equal(d.status, 'failed');
    assert.equal(d.stage, 'decrypting');
    const tracked = path.join(checkout('tracked'), '.env');
    assert.ok((d.error ?? '').includes(tracked), `the error names the file: ${d.error}`);
    assert.equal(await readFile(tracked, 'utf8'), 'TOKEN=committed-by-someone\n');
    assert.doesNotMatch(d.error ?? '', new RegExp(SECRET));
  });

  test('build: true keeps the env file out of the build context; the container still gets the value', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await finished('safety/build');
    assert.equal(d.status, 'success', `${d.error}\n${daemon!.store.getDeploymentLogs(d.id)}`);
    assert.match(await containerEnv(projects.build), new RegExp(`^TOKEN=${SECRET}$`, 'm'));

    // What the build saw: the context copied into the image has no .env and no plaintext anywhere.
    const ls = await docker(['run', '--rm', '--entrypoint', 'ls', builtImage, '-a', '/ctx']);
    assert.equal(ls.code, 0, ls.output);
    const copied = ls.stdout.split(/\s+/).filter(Boolean);
    assert.ok(copied.includes('Dockerfile') && copied.includes('.env.enc'), `the context was copied: ${copied}`);
    assert.ok(!copied.includes('.env'), `no .env in the build context: ${copied}`);
    const grep = await docker(['run', '--rm', '--entrypoint', 'grep', builtImage, '-r', '-l', SECRET, '/ctx']);
    assert.equal(grep.code, 1, `grep found the plaintext in the image: ${grep.output}`);
    const saved = await docker(['image', 'save', builtImage], { timeoutMs: 120_000 });
    assert.equal(saved.code, 0);
    assert.ok(!saved.stdout.includes(SECRET), 'the saved image layers do not contain the plaintext');

    // The env file lived in the private directory and is gone after the deploy; the checkout never had one.
    await assert.rejects(access(path.join(checkout('build'), '.env')));
    const privateRoot = path.join(daemon!.dataDir, 'plaintext');
    await until(
      async () => {
        const dirs = await readdir(privateRoot);
        const left = await Promise.all(dirs.map((x) => readdir(path.join(privateRoot, x))));
        return left.every((files) => files.length === 0);
      },
      'the private env file to be removed',
      10_000,
    );
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(logs, /env file kept out of the build context/);
    assert.doesNotMatch(logs, new RegExp(SECRET));
  });

  test("keep_decrypted: the kept file is Shiparr's own, so the next deploy overwrites it", async (t) => {
    if (!(await requireDocker(t))) return;
    const first = await finished('safety/kept');
    assert.equal(first.status, 'success', first.error ?? '');
    const kept = path.join(checkout('kept'), '.env');
    await until(() => daemon!.supervisor.get('safety/kept')?.state === 'idle', 'the first run to settle', 30_000);
    assert.equal(await readFile(kept, 'utf8'), `TOKEN=${SECRET}\n`, 'kept after the deploy');

    const sha = await git.commit('kept', { 'compose.yaml': appCompose(image, 'k2') });
    const second = await until(
      () => rows('safety/kept').find((r) => r.commit === sha && r.status !== 'pending' && r.status !== 'running'),
      'the second deployment',
      120_000,
    );
    assert.equal(second.status, 'success', second.error ?? '');
    const env = await containerEnv(projects.kept);
    assert.match(env, /^MARKER=k2$/m);
    assert.match(env, new RegExp(`^TOKEN=${SECRET}$`, 'm'));
    assert.equal(await readFile(kept, 'utf8'), `TOKEN=${SECRET}\n`);
  });
});
