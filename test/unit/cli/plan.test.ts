/**
 * @module `shiparr plan` as a real child process: usage errors and an unconfigured repository exit 2 with a message
 * (the plan itself, table and `--json`, runs against the real engine in test/e2e/plan.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function shiparr(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SHIPARR_') && !k.startsWith('SOPS_')),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', 'plan', ...args],
      { cwd: ROOT, env: { ...base, ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

test('shiparr plan: usage errors and an unknown repository exit 2 and say why', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-plan-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    path.join(dir, 'p.yaml'),
    'project: p\nrepositories:\n  app:\n    url: http://127.0.0.1:9/app.git\n    branch: main\n',
  );
  const env = { SHIPARR_CONFIG_PATH: dir, SHIPARR_DATA_PATH: path.join(dir, 'data') };
  for (const args of [[], ['noslash'], ['p/app', '--commit=xyz'], ['p/app', '--frobnicate']]) {
    const r = await shiparr(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: shiparr plan <project>\/<repo> \[--commit=<sha>\] \[--json\]/);
  }
  const unknown = await shiparr(['p/other'], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /repository p\/other is not configured/);
  // A remote nobody answers: no plan, exit 1 with the git error (the default target is the remote head).
  const down = await shiparr(['p/app', '--json'], env);
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /no plan for p\/app: GIT_UNREACHABLE/);
  assert.match(JSON.parse(down.stdout).error.code as string, /^GIT_UNREACHABLE$/);
});
