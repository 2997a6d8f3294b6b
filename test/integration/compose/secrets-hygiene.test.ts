/**
 * @module Secrets hygiene of the compose path without Docker: exec can replace the environment, compose runs with an
 * allow-listed one (the daemon's keys and passwords are not in it), and the values of the deploy's decrypted files
 * are masked in compose's output inside the worker task. A stand-in compose script prints what it can see.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test, type TestContext } from 'node:test';
import { COMPOSE_COMMAND_ENV, COMPOSE_PASS_ENV, composeEnv, resetComposeDetection } from '../../../src/compose/cli.ts';
import { exec } from '../../../src/lib/exec.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';

const DAEMON_SECRETS: Record<string, string> = {
  SOPS_AGE_KEY: 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ',
  SOPS_AGE_KEY_FILE: '/keys/age.txt',
  SHIPARR_AUTH_PASSWORD: 'daemon-auth-password-1',
  SHIPARR_WEBHOOK_SECRET: 'daemon-webhook-secret-1',
  SHIPARR_API_TOKENS: 'ci:daemon-api-token-1',
  GITHUB_TOKEN: 'daemon-github-token-1',
  SOME_OTHER_DAEMON_VAR: 'other-daemon-value-1',
};
const touched = [...Object.keys(DAEMON_SECRETS), COMPOSE_COMMAND_ENV, COMPOSE_PASS_ENV, 'DOCKER_CONFIG', 'HTTPS_PROXY'];
const saved = Object.fromEntries(touched.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of touched) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  resetComposeDetection();
});

async function tmp(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-hygiene-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A compose stand-in: answers `version`, and on `up` prints its environment and `$ECHO_FILE`'s content, then fails. */
async function envCompose(dir: string): Promise<string> {
  const script = path.join(dir, 'env-compose');
  await writeFile(
    script,
    [
      '#!/bin/sh',
      'for a in "$@"; do [ "$a" = version ] && { echo "Docker Compose version v2.99.0-env"; exit 0; }; done',
      'env | sort',
      '[ -f ./echo.txt ] && cat ./echo.txt',
      'echo "error: service db: invalid value" >&2',
      'exit 1',
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return script;
}

const upInput = (cwd: string, secretFiles: string[] = []) => ({
  cwd,
  project: 'hygiene',
  files: [],
  pull: 'never' as const,
  build: false,
  removeOrphans: false,
  timeoutMs: 20_000,
  secretFiles,
});

test('exec with inheritEnv: false gives the child only the given environment', async () => {
  process.env.SHIPARR_AUTH_PASSWORD = DAEMON_SECRETS.SHIPARR_AUTH_PASSWORD;
  const r = await exec('/usr/bin/env', [], {
    timeoutMs: 10_000,
    env: { ONLY: 'this', DROPPED: undefined },
    inheritEnv: false,
  });
  assert.equal(r.code, 0, r.output);
  // Under coverage Node itself adds NODE_V8_COVERAGE to every child it spawns, whatever env was given.
  const lines = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('NODE_V8_COVERAGE='));
  assert.deepEqual(lines, ['ONLY=this']);
  const merged = await exec('/usr/bin/env', [], { timeoutMs: 10_000, env: { ONLY: 'this' } });
  assert.match(merged.stdout, /^SHIPARR_AUTH_PASSWORD=/m, 'the default still merges over process.env');
});

test('composeEnv keeps PATH, HOME, DOCKER_*, COMPOSE_*, proxies; drops the daemon secrets even when listed', () => {
  const base = {
    ...DAEMON_SECRETS,
    PATH: '/usr/bin',
    HOME: '/srv/home',
    TMPDIR: '/tmp/x',
    XDG_RUNTIME_DIR: '/run/user/1',
    DOCKER_CONFIG: '/srv/docker-config',
    COMPOSE_PARALLEL_LIMIT: '2',
    HTTPS_PROXY: 'http://proxy:3128',
    no_proxy: 'localhost',
    LANG: 'C.UTF-8',
    USER: 'x',
    [COMPOSE_PASS_ENV]: 'EXTRA_ONE,PLUGIN_*,SHIPARR_AUTH_PASSWORD,SOPS_AGE_KEY,GITHUB_TOKEN',
    EXTRA_ONE: '1',
    PLUGIN_A: 'a',
  };
  assert.deepEqual(composeEnv(base, 'tcp://engine:2376'), {
    PATH: '/usr/bin',
    HOME: '/srv/home',
    TMPDIR: '/tmp/x',
    XDG_RUNTIME_DIR: '/run/user/1',
    DOCKER_CONFIG: '/srv/docker-config',
    COMPOSE_PARALLEL_LIMIT: '2',
    HTTPS_PROXY: 'http://proxy:3128',
    no_proxy: 'localhost',
    EXTRA_ONE: '1',
    PLUGIN_A: 'a',
    DOCKER_HOST: 'tcp://engine:2376',
  });
});

test('compose-up: compose sees none of the daemon variables, and the decrypted values are masked in its output', async (t) => {
  const dir = await tmp(t);
  Object.assign(process.env, DAEMON_SECRETS, { DOCKER_CONFIG: path.join(dir, 'docker-config') });
  process.env[COMPOSE_COMMAND_ENV] = await envCompose(dir);
  const envFile = path.join(dir, '.env');
  await writeFile(
    envFile,
    'DB_PASSWORD="decrypted-db-pass-9"\nexport API_KEY=decrypted-api-key-9 # comment\nDEBUG=true\nSHORT=12345\n',
  );
  await writeFile(
    path.join(dir, 'echo.txt'),
    'pw=decrypted-db-pass-9 key=decrypted-api-key-9 debug=true short=12345\n',
  );
  const r = await composeUp(upInput(dir, [envFile]));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.code, 'COMPOSE_UP_FAILED');
  const text = `${r.output ?? ''}\n${r.message}`;
  for (const [name, value] of Object.entries(DAEMON_SECRETS)) {
    assert.doesNotMatch(text, new RegExp(`^${name}=`, 'm'), `${name} reached compose`);
    assert.equal(text.includes(value), false, `${name}'s value reached compose`);
  }
  assert.match(text, /^PATH=/m);
  assert.match(text, /^DOCKER_CONFIG=/m);
  assert.match(text, /pw=\*\*\* key=\*\*\* debug=true short=12345/);
  assert.equal(text.includes('decrypted-db-pass-9'), false);
  assert.equal(text.includes('decrypted-api-key-9'), false);
});

test('compose-up: a secret file that is a symlink is not followed for masking; YAML leaves are masked', async (t) => {
  const dir = await tmp(t);
  process.env[COMPOSE_COMMAND_ENV] = await envCompose(dir);
  const yamlFile = path.join(dir, 'secrets.yaml');
  await writeFile(yamlFile, 'db:\n  password: yaml-secret-value-7\n  port: 5432\n');
  await symlink(yamlFile, path.join(dir, 'link.yaml'));
  await writeFile(path.join(dir, 'echo.txt'), 'got yaml-secret-value-7 on 5432\n');
  const viaLink = await composeUp(upInput(dir, [path.join(dir, 'link.yaml')]));
  assert.ok(!viaLink.ok && viaLink.output?.includes('yaml-secret-value-7'), 'a symlink is not read for masking');
  const direct = await composeUp(upInput(dir, [yamlFile]));
  assert.ok(!direct.ok);
  if (direct.ok) return;
  assert.match(direct.output ?? '', /got \*\*\* on 5432/);
});

test('compose-up: a configured compose file that is a symlink, or lies outside the checkout, is refused', async (t) => {
  const dir = await tmp(t);
  process.env[COMPOSE_COMMAND_ENV] = await envCompose(dir);
  const checkout = path.join(dir, 'checkout');
  const outside = path.join(dir, 'outside');
  await mkdir(path.join(checkout, 'deploy'), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, 'compose.yaml'), 'services: {}\n');
  await writeFile(path.join(checkout, 'deploy', 'real.yaml'), 'services: {}\n');
  await symlink('real.yaml', path.join(checkout, 'deploy', 'compose.yaml'));
  await symlink(outside, path.join(checkout, 'deploy', 'elsewhere'));
  const run = (file: string) =>
    composeUp({ ...upInput(path.join(checkout, 'deploy')), rootDir: checkout, files: [file] });
  const link = await run('compose.yaml');
  assert.ok(!link.ok && link.code === 'COMPOSE_BAD_PATH', JSON.stringify(link));
  assert.match(link.message, /compose file compose\.yaml is a symlink/);
  const out = await run('elsewhere/compose.yaml');
  assert.ok(!out.ok && out.code === 'COMPOSE_BAD_PATH', JSON.stringify(out));
  assert.match(out.message, /compose file elsewhere\/compose\.yaml is outside the checkout/);
  // A regular file inside the checkout reaches compose (the stand-in fails on purpose).
  const fine = await run('real.yaml');
  assert.ok(!fine.ok && fine.code === 'COMPOSE_UP_FAILED', JSON.stringify(fine));
});
