/**
 * @module Plaintext never outlives a deploy, even a killed one: the daemon is killed with SIGKILL while compose (the
 * fake CLI in hang mode) runs after decryption; the restarted daemon removes the recorded plaintext file before
 * anything else runs, logs it, leaves a recorded file that was replaced since in place, and touches nothing else in
 * the checkout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startGitServer } from '../helpers/git-server.ts';
import { FAKE_COMPOSE } from '../helpers/fake-compose/index.ts';
import { spawnDaemon, type DaemonProcess } from '../helpers/process.ts';
import { until } from '../helpers/wait.ts';
import { generateIdentity, sopsEncryptDotenv, sopsEncryptTree } from '../unit/secrets/helpers/sops-encrypt.ts';
import { deploymentRows, openDb, projectYaml, tempDirs } from './helpers.ts';

const KEY = 'vault/app';

/** Every path under `dir` (the .git directory included) with what would change if it were written or replaced. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = await lstat(p, { bigint: true });
      out.set(path.relative(dir, p), `${st.ino}:${st.size}:${st.mtimeNs}:${st.mode}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

async function killHangingCompose(pidsFile: string): Promise<void> {
  const pids = (await readFile(pidsFile, 'utf8').catch(() => ''))
    .split(/\s+/)
    .map(Number)
    .filter((n) => n > 0);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

test(
  'SIGKILL while compose runs after decryption: the restart removes exactly the recorded plaintext and logs it',
  { timeout: 180_000 },
  async (t) => {
    const git = await startGitServer();
    t.after(() => git.close());
    const dirs = await tempDirs(t, 'plaintext-crash');
    const me = generateIdentity();
    const keyFile = path.join(dirs.root, 'age.key');
    await writeFile(keyFile, `${me.identity}\n`, { mode: 0o600 });
    await git.createRepo('app', {
      'compose.yaml': 'services:\n  app:\n    image: busybox\n    environment:\n      TOKEN: ${TOKEN}\n',
      '.env.enc': sopsEncryptDotenv([{ key: 'TOKEN', value: 'plain-token-77' }], { recipients: [me.recipient] }).text,
      'conf/app.enc.yaml': sopsEncryptTree({ password: 'pw-99' }, 'yaml', { recipients: [me.recipient] }).text,
      'README.md': 'tracked file\n',
    });
    const repoYaml = (suspended: boolean) =>
      projectYaml('vault', {
        app: {
          url: git.repoUrl('app'),
          composeProject: 'vault-app-crash',
          extra: [
            'env_file: .env.enc',
            'decrypt: [{ file: conf/app.enc.yaml }]',
            ...(suspended ? ['suspended: true'] : []),
          ],
        },
      });
    await writeFile(path.join(dirs.configDir, 'vault.yaml'), repoYaml(false));
    const pidsFile = path.join(dirs.root, 'compose-pids');
    const env = {
      SOPS_AGE_KEY_FILE: keyFile,
      SHIPARR_COMPOSE_COMMAND: FAKE_COMPOSE,
      FAKE_COMPOSE_MODE: 'hang',
      FAKE_COMPOSE_PIDS: pidsFile,
      // The compose environment is an allow-list: let the fake compose see its own settings.
      SHIPARR_COMPOSE_PASS_ENV: 'FAKE_COMPOSE_*',
    };
    t.after(() => killHangingCompose(pidsFile));

    let d: DaemonProcess | null = await spawnDaemon({ ...dirs, env });
    t.after(() => d?.kill('SIGKILL'));
    const checkout = path.join(dirs.dataDir, 'deployments', 'vault', 'app');
    const dotenv = path.join(checkout, '.env');
    const conf = path.join(checkout, 'conf', 'app.yaml');
    // compose hangs: the deploy sits in applying with both plaintext files written and recorded.
    await until(
      async () =>
        (await d!.api<{ state: string }>(`/api/repositories/${encodeURIComponent(KEY)}`)).body.state === 'applying',
      'the deploy to reach applying',
      60_000,
      50,
    );
    await until(() => readFile(pidsFile, 'utf8').then(Boolean, () => false), 'compose to be running', 30_000, 50);
    assert.equal(await readFile(dotenv, 'utf8'), 'TOKEN=plain-token-77\n');
    d.kill('SIGKILL');
    assert.equal((await d.exited()).signal, 'SIGKILL');
    await killHangingCompose(pidsFile);

    const db = openDb(dirs.dataDir);
    const recorded = db
      .prepare('SELECT plaintext_files AS f, plaintext_pending AS p FROM deployments ORDER BY id DESC LIMIT 1')
      .get() as { f: string; p: number };
    db.close();
    assert.equal(recorded.p, 1);
    const files = JSON.parse(recorded.f) as { path: string }[];
    assert.deepEqual(files.map((f) => f.path).sort(), [dotenv, conf].sort(), 'both paths recorded before compose ran');
    assert.doesNotMatch(recorded.f, /plain-token-77|pw-99/, 'the record holds no plaintext');
    assert.equal(deploymentRows(dirs.dataDir, KEY)[0]?.stage, 'applying', 'the kill really happened mid-deploy');

    // Someone replaces conf/app.yaml after the crash: it is not the file Shiparr wrote any more, so it stays.
    await writeFile(conf, 'password: mine\n');
    await writeFile(path.join(checkout, 'notes.txt'), 'an untracked file of the operator\n');
    const before = await snapshot(checkout);

    // Restart suspended: no redeploy rewrites anything, so the only change is the sweep's.
    await writeFile(path.join(dirs.configDir, 'vault.yaml'), repoYaml(true));
    d = await spawnDaemon({ ...dirs, env });
    await assert.rejects(lstat(dotenv), { code: 'ENOENT' }, 'the plaintext .env is gone');
    const line = d.logs.find((l) => l['msg'] === 'removed a decrypted file left by an interrupted deployment');
    assert.ok(line, 'a log line says so');
    assert.equal(line['file'], dotenv);
    assert.equal(line['repo'], KEY);
    assert.ok(
      d.logs.some(
        (l) => l['file'] === conf && String(l['msg']).includes('changed since it was written; left in place'),
      ),
    );
    assert.equal(await readFile(conf, 'utf8'), 'password: mine\n');

    const after = await snapshot(checkout);
    before.delete('.env');
    assert.deepEqual(after, before, 'no other file or directory of the checkout was touched');
    assert.equal(deploymentRows(dirs.dataDir, KEY)[0]?.status, 'interrupted');

    // Nothing is left pending: a second restart has nothing to sweep.
    d.kill('SIGTERM');
    assert.equal((await d.exited()).code, 0);
    d = await spawnDaemon({ ...dirs, env });
    assert.equal(d.logs.filter((l) => String(l['msg']).includes('interrupted deployment')).length, 0);
    d.kill('SIGTERM');
    await d.exited();
  },
);
