/**
 * @module The daemon as users start it: `npm start` (tsx src/main.ts serve) with the committed example config serves
 * /api/health while the example's remote is unreachable, stops cleanly on SIGTERM; bad settings exit 2;
 * `validate` exit codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/docker.ts';
import { until } from '../helpers/wait.ts';

const execFileAsync = promisify(execFile);
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileAsync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

/** `group`: signal the whole process group, as a terminal's Ctrl-C or `docker stop` of a shell would (npm itself does not relay). */
async function startAndProbe(cmd: string, args: string[], group = false) {
  const data = await mkdtemp(path.join(os.tmpdir(), 'shiparr-start-'));
  const port = await freePort();
  const child = spawn(cmd, args, {
    env: {
      ...process.env,
      SHIPARR_PORT: String(port),
      SHIPARR_HOST: '127.0.0.1',
      SHIPARR_DATA_PATH: data,
      SHIPARR_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  try {
    const health = await until(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/api/health`);
        return r.status === 200
          ? ((await r.json()) as { status: string; db: { ok: boolean }; config: { ok: boolean } })
          : null;
      },
      `health on ${port}`,
      60_000,
      250,
    );
    assert.equal(health.db.ok, true);
    assert.equal(health.config.ok, true);
    const repos = (await (await fetch(`http://127.0.0.1:${port}/api/repositories`)).json()) as
      { key: string }[] | { items: { key: string }[] };
    const list = Array.isArray(repos) ? repos : repos.items;
    assert.ok(
      list.some((r) => r.key === 'example/example-stack'),
      'the example repository is live',
    );
    // The unreachable example remote must not take the daemon down: once its first check has completed (failed,
    // within the example's 120 s git timeout at worst), the daemon still serves.
    const repo = await until(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/api/repositories/example%2Fexample-stack`);
        const body = (await r.json()) as { lastCheckAt: string | null; lastError: { stage: string } | null };
        return body.lastCheckAt !== null || body.lastError !== null ? body : null;
      },
      "the example repository's first check",
      150_000,
      250,
    );
    assert.equal(child.exitCode, null, 'the daemon is still running');
    assert.equal(
      (await fetch(`http://127.0.0.1:${port}/api/health`)).status,
      200,
      `after the check (${JSON.stringify(repo.lastError)})`,
    );
  } finally {
    if (group && child.pid) process.kill(-child.pid, 'SIGTERM');
    else child.kill('SIGTERM');
  }
  const result = await exited;
  await until(
    async () =>
      fetch(`http://127.0.0.1:${port}/api/health`).then(
        () => false,
        () => true,
      ),
    'the daemon to stop listening',
    20_000,
  );
  await rm(data, { recursive: true, force: true });
  return { ...result, output };
}

test('npm start serves /api/health with the example config while its remote is unreachable', async () => {
  const r = await startAndProbe('npm', ['start', '--silent'], true);
  assert.ok(r.code === 0 || r.signal === 'SIGTERM', `npm stopped: ${JSON.stringify(r)}`);
});

test('shiparr serve exits 0 on SIGTERM after a clean shutdown', async () => {
  const r = await startAndProbe(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve']);
  assert.equal(r.code, 0, r.output);
});

test('SIGTERM while the daemon is still starting waits for the start, then shuts down cleanly (exit 0)', async () => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'shiparr-early-term-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: {
      ...process.env,
      SHIPARR_PORT: '0',
      SHIPARR_HOST: '127.0.0.1',
      SHIPARR_DATA_PATH: data,
      SHIPARR_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  // The first line of the process: the store, the recovery sweep, the HTTP server and the watcher are not up yet.
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (c: Buffer) => {
      const before = output;
      output += c.toString();
      if (!before.includes('Shiparr is starting') && output.includes('Shiparr is starting')) {
        child.kill('SIGTERM');
        resolve();
      }
    }),
  );
  const r = await exited;
  await rm(data, { recursive: true, force: true });
  assert.deepEqual(r, { code: 0, signal: null }, output);
  const lines = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; starting?: boolean });
  const msgs = lines.map((l) => l.msg);
  assert.equal(lines.find((l) => l.msg === 'signal received')?.starting, true, output);
  assert.ok(
    msgs.includes('Shiparr is serving') && msgs.indexOf('Shiparr is serving') < msgs.indexOf('stopped'),
    output,
  );
});

test('invalid settings print one clear message and exit 2', async () => {
  const r = await cli(['serve'], { SHIPARR_PORT: 'abc' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /SHIPARR_PORT/);
  const l = await cli(['serve'], { Shiparr_LOG_LEVEL: 'loud' });
  assert.equal(l.code, 2);
  assert.match(l.stderr, /SHIPARR_LOG_LEVEL/);
  assert.equal((await cli(['frobnicate'])).code, 2);
});

test('validate: the committed example passes (0); a broken directory fails (1) naming file, key path and reason', async () => {
  const ok = await cli(['validate', 'config/projects']);
  assert.equal(ok.code, 0, ok.stderr);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-validate-'));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'bad.yaml'), 'project: bad\nrepositories:\n  app:\n    url: ""\n    colour: blue\n');
  await writeFile(path.join(dir, 'broken.yml'), 'project: [unclosed\n');
  const bad = await cli(['validate', dir]);
  assert.equal(bad.code, 1);
  const text = bad.stdout + bad.stderr;
  assert.match(text, /bad\.yaml: repositories\.app: unknown key "colour"/);
  assert.match(text, /bad\.yaml: repositories\.app\.url: /);
  assert.match(text, /broken\.yml: .*line \d+/i);
  await rm(dir, { recursive: true, force: true });
});
