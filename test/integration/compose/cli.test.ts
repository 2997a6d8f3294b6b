/**
 * @module Compose CLI layer: argument building, ps parsing, failure classification, and the compose-* tasks against
 * the fake compose script (hang/fail shapes a real engine cannot produce on demand). No Docker needed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test, type TestContext } from 'node:test';
import {
  COMPOSE_COMMAND_ENV,
  COMPOSE_PASS_ENV,
  detectCompose,
  isDaemonUnreachable,
  parseVersion,
  resetComposeDetection,
  upArgs,
  type ComposeCommand,
} from '../../../src/compose/cli.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';
import { createLogger } from '../../../src/logger.ts';
import { createPool, createTaskRunner } from '../../../src/workers/pool.ts';
import { FAKE_COMPOSE } from '../../helpers/fake-compose/index.ts';
import { until } from '../../helpers/wait.ts';

const v2: ComposeCommand = { file: 'docker', baseArgs: ['compose'], version: 2, versionText: '2.26.1' };
const v1: ComposeCommand = { file: 'docker-compose', baseArgs: [], version: 1, versionText: '1.29.2' };

const FAKE_ENV = [
  'FAKE_COMPOSE_MODE',
  'FAKE_COMPOSE_LOG',
  'FAKE_COMPOSE_PIDS',
  COMPOSE_COMMAND_ENV,
  COMPOSE_PASS_ENV,
] as const;
// The argv log records DOCKER_HOST: start from a clean slate.
delete process.env['DOCKER_HOST'];
afterEach(() => {
  for (const k of FAKE_ENV) delete process.env[k];
  resetComposeDetection();
});

async function tmp(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Points the compose tasks at the fake script; returns the argv log file. */
async function useFake(t: TestContext, mode: string): Promise<{ dir: string; log: string }> {
  const dir = await tmp(t);
  const log = path.join(dir, 'argv.log');
  process.env[COMPOSE_COMMAND_ENV] = FAKE_COMPOSE;
  // compose runs with an allow-listed environment: the fake's own settings must be let through explicitly.
  process.env[COMPOSE_PASS_ENV] = 'FAKE_COMPOSE_*';
  process.env['FAKE_COMPOSE_MODE'] = mode;
  process.env['FAKE_COMPOSE_LOG'] = log;
  return { dir, log };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

test('up args: v2 with every option; v1 without --pull and --ansi', () => {
  const o = { project: 'shop', files: ['a.yaml', 'b.yaml'], pull: 'always' as const, build: true, removeOrphans: true };
  assert.deepEqual(upArgs(v2, o), [
    'compose',
    '--ansi',
    'never',
    '-p',
    'shop',
    '-f',
    'a.yaml',
    '-f',
    'b.yaml',
    'up',
    '-d',
    '--remove-orphans',
    '--pull',
    'always',
    '--build',
  ]);
  assert.deepEqual(upArgs(v1, { ...o, build: false, removeOrphans: false, files: [] }), ['-p', 'shop', 'up', '-d']);
});

test('version parsing tells v1 from v2', () => {
  assert.deepEqual(parseVersion('Docker Compose version 2.26.1-4'), { version: 2, versionText: '2.26.1' });
  assert.deepEqual(parseVersion('Docker Compose version v2.29.7'), { version: 2, versionText: '2.29.7' });
  assert.deepEqual(parseVersion('docker-compose version 1.29.2, build 5becea4c'), {
    version: 1,
    versionText: '1.29.2',
  });
});

test('daemon-unreachable detection matches socket errors, not missing compose files', () => {
  assert.equal(
    isDaemonUnreachable('Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?'),
    true,
  );
  assert.equal(isDaemonUnreachable('dial unix /var/run/docker.sock: connect: no such file or directory'), true);
  assert.equal(isDaemonUnreachable('open /srv/app/compose.yaml: no such file or directory'), false);
  assert.equal(isDaemonUnreachable('service "web" refers to undefined volume data'), false);
});

test('detection honours SHIPARR_COMPOSE_COMMAND and caches per override', async () => {
  const c = await detectCompose({ override: FAKE_COMPOSE });
  assert.deepEqual(c, { file: FAKE_COMPOSE, baseArgs: [], version: 2, versionText: '2.99.0' });
  assert.equal(await detectCompose({ override: '/nonexistent/compose-xyz' }), null);
  const real = await detectCompose({ override: 'docker compose' });
  if (real) assert.deepEqual(real.baseArgs, ['compose']);
});

test('compose-up passes project, files and options to the CLI and DOCKER_HOST through env', async (t) => {
  const { dir, log } = await useFake(t, 'ok');
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: ['compose.yaml', 'prod.yaml'],
    pull: 'never',
    build: true,
    removeOrphans: true,
    timeoutMs: 10_000,
    dockerHost: 'unix:///tmp/shiparr-test.sock',
  });
  assert.equal(r.ok, true);
  assert.ok(r.ok && r.output.includes('fake compose: ok'));
  const lines = (await readFile(log, 'utf8')).trim().split('\n');
  assert.deepEqual(lines, [
    'version',
    '--ansi never -p shop -f compose.yaml -f prod.yaml up -d --remove-orphans --pull never --build # DOCKER_HOST=unix:///tmp/shiparr-test.sock',
  ]);
});

test('compose-up: a failing CLI → COMPOSE_UP_FAILED with its output, not transient', async (t) => {
  const { dir } = await useFake(t, 'fail');
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: [],
    pull: 'missing',
    build: false,
    removeOrphans: true,
    timeoutMs: 10_000,
  });
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_UP_FAILED');
  assert.equal(r.transient, false);
  assert.match(r.output ?? '', /something went wrong/);
  assert.match(r.message, /something went wrong/);
});

test('compose-up: "Cannot connect to the Docker daemon" → DOCKER_UNREACHABLE, transient', async (t) => {
  const { dir } = await useFake(t, 'unreachable');
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: [],
    pull: 'missing',
    build: false,
    removeOrphans: true,
    timeoutMs: 10_000,
  });
  assert.ok(!r.ok);
  assert.equal(r.code, 'DOCKER_UNREACHABLE');
  assert.equal(r.transient, true);
});

test('compose-up: a hanging CLI is killed at the timeout (whole group) → COMPOSE_TIMEOUT', async (t) => {
  const { dir } = await useFake(t, 'hang');
  const pids = path.join(dir, 'pids');
  process.env['FAKE_COMPOSE_PIDS'] = pids;
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: [],
    pull: 'missing',
    build: false,
    removeOrphans: true,
    timeoutMs: 1_500,
  });
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_TIMEOUT');
  assert.equal(r.transient, false);
  assert.match(r.output ?? '', /hanging/);
  const [shell, child] = (await readFile(pids, 'utf8')).trim().split(' ').map(Number);
  await until(
    () => !alive(shell as number) && !alive(child as number),
    'the compose process and its child to die',
    10_000,
    25,
  ).catch(() => undefined);
  assert.equal(alive(shell as number), false, 'compose process still alive');
  assert.equal(alive(child as number), false, 'its child process still alive');
});

test('compose-up: no compose CLI → COMPOSE_NOT_FOUND', async (t) => {
  const dir = await tmp(t);
  process.env[COMPOSE_COMMAND_ENV] = path.join(dir, 'no-such-compose');
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: [],
    timeoutMs: 5_000,
    pull: 'missing',
    build: false,
    removeOrphans: true,
  });
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_NOT_FOUND');
  assert.match(r.message, /SHIPARR_COMPOSE_COMMAND/);
});

test('the compose tasks run in the real worker pool', async (t) => {
  const { dir, log } = await useFake(t, 'fail');
  // Workers copy process.env when they start: the fake's settings above are what they see.
  const pool = createPool({ maxThreads: 1, log: createLogger({ level: 'silent' }) });
  t.after(() => pool.destroy());
  const runTask = createTaskRunner(pool);
  const r = await runTask('compose-up', {
    cwd: dir,
    project: 'pooled',
    files: [],
    pull: 'missing',
    build: false,
    removeOrphans: false,
    timeoutMs: 10_000,
  });
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_UP_FAILED');
  assert.match(r.output ?? '', /something went wrong/);
  assert.match(await readFile(log, 'utf8'), /-p pooled up -d --pull missing/);
});
