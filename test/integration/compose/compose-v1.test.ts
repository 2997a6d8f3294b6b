/**
 * @module The compose tasks against a compose v1 CLI (`docker-compose` 1.x, a small stand-in script that answers
 * `version` like v1 and logs its argv): v1 has no `up --pull` (an explicit `pull` runs first for "always") and no
 * `ps --format json` (the status task refuses clearly instead of misparsing). No Docker needed.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test, type TestContext } from 'node:test';
import { COMPOSE_COMMAND_ENV, resetComposeDetection } from '../../../src/compose/cli.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';

const V1_SCRIPT = `#!/bin/sh
printf '%s\\n' "$*" >> "$(dirname "$0")/argv.log"
if [ "$1" = "version" ]; then echo "docker-compose version 1.29.2, build 5becea4c"; exit 0; fi
for arg in "$@"; do
  if [ "$arg" = "pull" ] && [ -e "$(dirname "$0")/fail-pull" ]; then echo "ERROR: pull access denied for private/app" >&2; exit 1; fi
done
echo "fake v1: $*"
exit 0
`;

delete process.env['DOCKER_HOST'];
afterEach(() => {
  delete process.env[COMPOSE_COMMAND_ENV];
  resetComposeDetection();
});

/** Installs the v1 stand-in in a temp dir and points the tasks at it; returns the dir (argv.log is written there). */
async function useV1(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-compose-v1-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'docker-compose');
  await writeFile(script, V1_SCRIPT);
  await chmod(script, 0o755);
  process.env[COMPOSE_COMMAND_ENV] = script;
  return dir;
}

const argv = async (dir: string): Promise<string[]> =>
  (await readFile(path.join(dir, 'argv.log'), 'utf8')).trim().split('\n');

test('v1 with pull "always": an explicit pull runs before up, and up gets no --pull or --ansi', async (t) => {
  const dir = await useV1(t);
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: ['compose.yaml'],
    pull: 'always',
    build: false,
    removeOrphans: true,
    timeoutMs: 10_000,
  });
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(await argv(dir), [
    'version',
    '-p shop -f compose.yaml pull',
    '-p shop -f compose.yaml up -d --remove-orphans',
  ]);
  // The pull's output comes first in what the deploy log shows.
  assert.ok(r.output.indexOf('pull') < r.output.indexOf('up -d'), r.output);
});

test('v1 with pull "missing" does not pull separately', async (t) => {
  const dir = await useV1(t);
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: [],
    pull: 'missing',
    build: true,
    removeOrphans: false,
    timeoutMs: 10_000,
  });
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(await argv(dir), ['version', '-p shop up -d --build']);
});

test("v1: a failing pull stops the deploy before up, with pull's error and COMPOSE_PULL_FAILED", async (t) => {
  const dir = await useV1(t);
  await writeFile(path.join(dir, 'fail-pull'), '');
  const r = await composeUp({
    cwd: dir,
    project: 'shop',
    files: [],
    pull: 'always',
    build: false,
    removeOrphans: false,
    timeoutMs: 10_000,
  });
  assert.ok(!r.ok);
  assert.equal(r.code, 'COMPOSE_PULL_FAILED');
  assert.match(r.message, /pull access denied/);
  assert.ok(!(await argv(dir)).some((l) => l.includes(' up ')), 'up must not run after a failed pull');
});
