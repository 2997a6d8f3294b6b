/**
 * @module Docker CLI config handling for registry credentials: reading `auths` of a mounted config.json (base64
 * `auth`, username/password, Docker Hub's key, unsupported credential helpers, unreadable files) and the private
 * DOCKER_CONFIG directory a compose run gets (modes, only the given auths, the user's plugins linked in, removal).
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  createPrivateDockerConfig,
  readDockerConfigAuths,
  registriesOfImages,
} from '../../../src/registry/docker-config.ts';
import { registerTestSecrets } from '../../helpers/secret-sweep.ts';

const PASS = 'cfg-pass-5e2b7c9d13';
registerTestSecrets('docker config test', [PASS, Buffer.from(`bob:${PASS}`).toString('base64')]);

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'shiparr-dockercfg-test-'));
  dirs.push(d);
  return d;
}

test('auths: base64 auth, username/password, Docker Hub key; credential helpers are warned about', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'config.json');
  await writeFile(
    file,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from(`bob:${PASS}`).toString('base64') },
        '127.0.0.1:5000': { username: 'alice', password: PASS },
        'https://GHCR.io': { auth: Buffer.from('carol:x:y').toString('base64') },
        'empty.example.com': {},
      },
      credsStore: 'desktop',
    }),
  );
  const r = await readDockerConfigAuths(file);
  assert.deepEqual(r.auths, {
    'docker.io': { username: 'bob', password: PASS },
    '127.0.0.1:5000': { username: 'alice', password: PASS },
    'ghcr.io': { username: 'carol', password: 'x:y' },
  });
  assert.equal(r.warnings.length, 2, r.warnings.join('\n'));
  assert.ok(r.warnings.every((w) => w.startsWith(`${file}: `)));
  assert.match(r.warnings.join('\n'), /credsStore\/credHelpers are not supported/);
  assert.ok(!r.warnings.join('\n').includes(PASS));

  await writeFile(file, '{ not json');
  await assert.rejects(
    readDockerConfigAuths(file),
    new RegExp(
      `^Error: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot read the Docker config \\(not valid JSON\\)`,
    ),
  );
  await assert.rejects(
    readDockerConfigAuths(path.join(dir, 'missing.json')),
    /cannot read the Docker config \(ENOENT\)/,
  );
});

test('registries of image references', () => {
  assert.deepEqual(
    [...registriesOfImages(['postgres:16', 'ghcr.io/o/a:1', '127.0.0.1:5000/app@sha256:' + 'a'.repeat(64), 'Bad Ref'])],
    ['docker.io', 'ghcr.io', '127.0.0.1:5000'],
  );
});

test('private DOCKER_CONFIG: 0700 dir, 0600 config with only the given auths, user plugins linked, removed', async () => {
  const user = await tempDir();
  await mkdir(path.join(user, 'cli-plugins'));
  await writeFile(
    path.join(user, 'config.json'),
    JSON.stringify({
      auths: { 'other.example.com': { auth: 'c2VjcmV0OnNlY3JldA==' } },
      currentContext: 'remote',
      credsStore: 'x',
    }),
  );
  const parent = path.join(await tempDir(), 'scratch');
  const p = await createPrivateDockerConfig(
    parent,
    { 'docker.io': { username: 'bob', password: PASS } },
    {
      DOCKER_CONFIG: user,
    },
  );
  assert.equal((await stat(p.dir)).mode & 0o777, 0o700);
  const cfgFile = path.join(p.dir, 'config.json');
  assert.equal((await stat(cfgFile)).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(await readFile(cfgFile, 'utf8')), {
    currentContext: 'remote',
    auths: { 'https://index.docker.io/v1/': { auth: Buffer.from(`bob:${PASS}`).toString('base64') } },
  });
  assert.ok((await lstat(path.join(p.dir, 'cli-plugins'))).isSymbolicLink());
  assert.equal(await readlink(path.join(p.dir, 'cli-plugins')), path.join(user, 'cli-plugins'));
  await p.remove();
  await assert.rejects(stat(p.dir), /ENOENT/);
  // The user's config is untouched.
  assert.match(await readFile(path.join(user, 'config.json'), 'utf8'), /other\.example\.com/);
});
