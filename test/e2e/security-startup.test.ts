/**
 * @module Safe defaults of the real `shiparr serve`: listening on a network address without authentication is refused
 * (exit 2, a message naming the fixes) unless SHIPARR_ALLOW_UNAUTHENTICATED=true, which logs a warning at start; with
 * no SHIPARR_HOST the daemon binds 127.0.0.1 and answers only the allowed Host names.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadSettings } from '../../src/config/settings.ts';
import { startDaemon } from '../../src/daemon/index.ts';
import { SettingsError } from '../../src/errors.ts';
import { spawnDaemon } from '../helpers/process.ts';

const execFileAsync = promisify(execFile);

/** `shiparr serve` until it exits (it must exit on its own: refused settings). */
const serve = (env: NodeJS.ProcessEnv) =>
  execFileAsync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

/** GET with an exact Host header. */
function get(base: string, p: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(new URL(p, base), { headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

async function dirs(t: { after(fn: () => Promise<void>): void }) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-sec-start-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return { configDir: path.join(root, 'config'), dataDir: path.join(root, 'data') };
}

test('serve on 0.0.0.0 or :: without auth exits 2 naming the fixes, and creates nothing', async (t) => {
  const { configDir, dataDir } = await dirs(t);
  for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
    const r = await serve({
      SHIPARR_HOST: host,
      SHIPARR_PORT: '0',
      SHIPARR_CONFIG_PATH: configDir,
      SHIPARR_DATA_PATH: dataDir,
      SHIPARR_AUTH_ENABLED: '',
      SHIPARR_AUTH_MODE: '',
      SHIPARR_ALLOW_UNAUTHENTICATED: '',
      SHIPARR_API_TOKENS: `ci:${'t'.repeat(40)}`,
    });
    assert.equal(r.code, 2, `${host}: ${r.stderr}`);
    assert.match(r.stderr, /^shiparr: refusing to serve the API on .* without authentication/m);
    for (const fix of ['SHIPARR_AUTH_MODE=basic', 'SHIPARR_HOST=127.0.0.1', 'SHIPARR_ALLOW_UNAUTHENTICATED=true'])
      assert.ok(r.stderr.includes(fix), `${host}: names ${fix}`);
    assert.ok(!r.stderr.includes('t'.repeat(40)), 'no token in the message');
  }
  await assert.rejects(() => import('node:fs/promises').then((fs) => fs.stat(dataDir)), /ENOENT/, 'no data dir made');
});

test('startDaemon refuses the same settings before it opens anything (in-process callers)', async (t) => {
  const { configDir, dataDir } = await dirs(t);
  const settings = loadSettings({
    SHIPARR_HOST: '0.0.0.0',
    SHIPARR_PORT: '0',
    SHIPARR_CONFIG_PATH: configDir,
    SHIPARR_DATA_PATH: dataDir,
  });
  await assert.rejects(
    () => startDaemon({ settings, watch: false }),
    (err: unknown) => err instanceof SettingsError && /without authentication/.test(err.message),
  );
  await assert.rejects(() => import('node:fs/promises').then((fs) => fs.stat(dataDir)), /ENOENT/, 'no data dir made');
});

test('SHIPARR_ALLOW_UNAUTHENTICATED=true serves on 0.0.0.0 with a warning at start', async (t) => {
  const { configDir, dataDir } = await dirs(t);
  const d = await spawnDaemon({
    configDir,
    dataDir,
    env: { SHIPARR_HOST: '0.0.0.0', SHIPARR_ALLOW_UNAUTHENTICATED: 'true', SHIPARR_AUTH_MODE: 'none' },
  });
  t.after(async () => {
    d.kill('SIGTERM');
    await d.exited();
  });
  const warning = d.logs.find((l) => l['level'] === 40 && /SHIPARR_ALLOW_UNAUTHENTICATED=true/.test(String(l['msg'])));
  assert.ok(warning, `a warning is logged: ${JSON.stringify(d.logs.map((l) => l['msg']))}`);
  assert.equal(warning['host'], '0.0.0.0');
  assert.equal((await d.api('/api/health')).status, 200);
});

test('without SHIPARR_HOST the daemon binds 127.0.0.1; a rebinding Host gets 403 except on /api/health', async (t) => {
  const { configDir, dataDir } = await dirs(t);
  const d = await spawnDaemon({
    configDir,
    dataDir,
    env: {
      SHIPARR_HOST: undefined,
      Shiparr_HOST: undefined,
      SHIPARR_AUTH_MODE: 'none',
      SHIPARR_ALLOWED_HOSTS: undefined,
    },
  });
  t.after(async () => {
    d.kill('SIGTERM');
    await d.exited();
  });
  assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const port = new URL(d.url).port;
  assert.equal(await get(d.url, '/api/repositories', `127.0.0.1:${port}`), 200);
  assert.equal(await get(d.url, '/api/repositories', `localhost:${port}`), 200);
  assert.equal(await get(d.url, '/api/repositories', `rebind.attacker.example:${port}`), 403);
  assert.equal(await get(d.url, '/', `rebind.attacker.example:${port}`), 403);
  assert.equal(await get(d.url, '/api/health', `rebind.attacker.example:${port}`), 200);
});
