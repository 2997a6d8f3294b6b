/** @module Tests for `shiparr validate`: output format and exit codes, on the fixtures in test/fixtures/configs. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validateCommand } from '../../../src/cli/validate.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/configs/', import.meta.url));

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const code = await validateCommand(
    args,
    env,
    { write: (s: string) => (out += s) },
    { write: (s: string) => (err += s) },
  );
  return { code, out, err };
}

test('valid directory: exit 0, one ok line per project and a summary', async () => {
  const dir = path.join(fixtures, 'valid');
  const r = await run([dir]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  assert.equal(
    r.out,
    `ok: ${path.join(dir, 'homelab.yaml')}: project "homelab", 2 repositories\n` +
      `ok: ${path.join(dir, 'tools.yml')}: project "tools", 1 repository\n` +
      '2 files, 2 projects, 3 repositories, 0 errors\n',
  );
});

test('errors: exit 1, each as <file>: <key.path>: <message>, the good file still counted', async () => {
  const dir = path.join(fixtures, 'mixed');
  const r = await run([dir]);
  assert.equal(r.code, 1);
  const bad = path.join(dir, 'bad.yaml');
  assert.deepEqual(
    r.err.trimEnd().split('\n').sort(),
    [
      `${bad}: repositories.app.token: environment variable FIXTURE_UNSET_TOKEN is not set (use \${FIXTURE_UNSET_TOKEN:-default} for a default)`,
      `${bad}: repositories.app.build: must be true or false, not text`,
      `${bad}: repositories.app: unknown key "branhc" (did you mean "branch"?)`,
    ].sort(),
  );
  assert.match(r.out, /^ok: .*good\.yaml: project "good", 1 repository$/m);
  assert.match(r.out, /^2 files, 1 project, 1 repository, 3 errors$/m);
});

test('${VAR} values come from the environment passed in: setting the variable removes only that error', async () => {
  const r = await run([path.join(fixtures, 'mixed')], { FIXTURE_UNSET_TOKEN: 'x' });
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.err, /FIXTURE_UNSET_TOKEN/);
  assert.match(r.err, /bad\.yaml: repositories\.app\.build: must be true or false/);
  assert.match(r.out, /2 errors/);
});

test("the directory defaults to SHIPARR_CONFIG_PATH (or the original Shiparr script's spelling Shiparr_CONFIG_PATH)", async () => {
  const dir = path.join(fixtures, 'valid');
  assert.equal((await run([], { SHIPARR_CONFIG_PATH: dir })).code, 0);
  const seed = await run([], { Shiparr_CONFIG_PATH: path.join(fixtures, 'mixed') });
  assert.equal(seed.code, 1);
  assert.match(seed.out, /3 errors/);
});

test('a missing directory is an error (exit 1); an empty one warns', async () => {
  const r = await run([path.join(fixtures, 'no-such-dir')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no-such-dir: cannot read the config directory: no such file or directory/);
  assert.match(r.out, /0 files, 0 projects, 0 repositories, 1 error/);
  const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'shiparr-validate-'));
  try {
    const e = await run([empty]);
    assert.equal(e.code, 0);
    assert.match(e.err, /warning: no \*\.yaml or \*\.yml project files/);
    assert.match(e.out, /^0 files, 0 projects, 0 repositories, 0 errors$/m);
  } finally {
    await fs.rm(empty, { recursive: true, force: true });
  }
});

test('usage errors exit 2; --help exits 0', async () => {
  const unknown = await run(['--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown option "--frobnicate"/);
  assert.match(unknown.err, /Usage: shiparr validate/);
  const tooMany = await run(['a', 'b']);
  assert.equal(tooMany.code, 2);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /Usage: shiparr validate \[dir\]/);
});

test('notification URLs get the same Shoutrrr checks as in the daemon', async () => {
  const r = await run([path.join(fixtures, 'bad-notify')]);
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /notify\.yaml: repositories\.app\.notifications\.failure\[0\]: notification URL has an unknown service "carrierpigeon"/,
  );
});
