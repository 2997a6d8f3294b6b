/**
 * @module The `shiparr` entry point as a real child process (node --import tsx src/main.ts): command dispatch,
 * --help/--version, exit codes 0/1/2, and the one-line message when a command fails outright.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SOPS = path.join(ROOT, 'test/fixtures/sops');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from the repository root; SHIPARR_* from the developer's shell must not leak in. */
function shiparr(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SHIPARR_') && !k.startsWith('SOPS_')),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', ...args],
      { cwd: ROOT, env: { ...base, ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

test('--version, -v and version print the version from package.json and exit 0', async () => {
  const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const arg of ['--version', '-v', 'version']) {
    const r = await shiparr([arg]);
    assert.equal(r.code, 0, arg);
    assert.equal(r.stdout, `${version}\n`, arg);
    assert.equal(r.stderr, '');
  }
});

test('--help prints the usage with every command and exits 0', async () => {
  const r = await shiparr(['--help']);
  assert.equal(r.code, 0);
  for (const cmd of ['serve', 'validate [dir]', 'deploy <project>/<repo>', 'decrypt <file>', 'notify-test <url>']) {
    assert.ok(
      r.stdout.includes(`shiparr ${cmd}`) || r.stdout.includes(`shiparr [${cmd}]`),
      `usage lists ${cmd}:\n${r.stdout}`,
    );
  }
});

test('an unknown command exits 2 naming it, with the usage on stderr and nothing on stdout', async () => {
  const r = await shiparr(['deploy-all']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^shiparr: unknown command "deploy-all"\n/);
  assert.match(r.stderr, /Usage:/);
});

test('decrypt through the entry point prints the plaintext of a SOPS dotenv file', async () => {
  const r = await shiparr(['decrypt', path.join(SOPS, 'humphd-sops-age/secret.enc.env')], {
    SOPS_AGE_KEY_FILE: path.join(SOPS, 'humphd-sops-age/key.txt'),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'secret=this is a secret\nanother_secret=7\n');
});

test('decrypt with a key that does not match exits 1 and prints no plaintext', async () => {
  const r = await shiparr(['decrypt', path.join(SOPS, 'humphd-sops-age/secret.enc.env')], {
    SOPS_AGE_KEY_FILE: path.join(SOPS, 'getsops-sops/age-mockIdentity.txt'),
  });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.doesNotMatch(r.stderr, /this is a secret/);
  assert.notEqual(r.stderr.trim(), '');
});

test('notify-test without a URL exits 2 with its usage', async () => {
  const r = await shiparr(['notify-test']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /usage: shiparr notify-test <shoutrrr-url>/);
});

test('deploy with invalid settings exits 2 before touching anything', async () => {
  const r = await shiparr(['deploy', 'home/app'], { SHIPARR_PORT: 'abc' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^shiparr: invalid settings:/);
  assert.match(r.stderr, /SHIPARR_PORT/);
});

test('serve that cannot create its data directory exits 1 with a one-line reason', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-main-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await shiparr(['serve'], {
    // A regular file where a directory is needed: mkdir fails with ENOTDIR for every user, root included.
    SHIPARR_DATA_PATH: path.join(ROOT, 'package.json', 'data'),
    SHIPARR_CONFIG_PATH: dir,
    SHIPARR_PORT: '0',
    SHIPARR_HOST: '127.0.0.1',
    SHIPARR_LOG_LEVEL: 'silent',
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^shiparr: .*ENOTDIR.*package\.json\/data/m);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
