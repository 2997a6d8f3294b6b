/**
 * @module End to end, secrets hygiene of the deploy path with the real daemon and Docker engine: a compose file cannot
 * read the daemon's variables through `${…}`; a decrypted value that compose echoes in an error is masked in the
 * stored log, the API and the error; a committed symlink `.env.enc` fails at decrypting naming the file with nothing
 * decrypted or written; notification URLs are stored and served with the webhook path/query and the ntfy topic masked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { access, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGitServer, isolatedGitEnv, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  composeDown,
  removeProjectContainers,
  docker,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { generateIdentity, sopsEncryptDotenv } from '../unit/secrets/helpers/sops-encrypt.ts';

const run = promisify(execFile);
const me = generateIdentity();
const DAEMON_ENV: Record<string, string> = {
  SOPS_AGE_KEY: me.identity,
  SHIPARR_AUTH_ENABLED: 'true',
  SHIPARR_AUTH_PASSWORD: 'hygiene-auth-password-77',
  SHIPARR_WEBHOOK_SECRET: 'hygiene-webhook-secret-77',
  SHIPARR_API_TOKENS: 'ci:hygiene-api-token-77-0123456789abcdef',
  GITHUB_TOKEN: 'hygiene-github-token-77',
};
const DB_PASSWORD = 'decryptedpass4711q';
const TOPIC = 'secret-topic-4711';
const HOOK_ID = 'hookpath-4711';
const AUTH = `Basic ${Buffer.from(`admin:${DAEMON_ENV.SHIPARR_AUTH_PASSWORD}`).toString('base64')}`;

function leakCompose(image: string): string {
  return `services:
  app:
    image: ${JSON.stringify(image)}
    pull_policy: never
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    environment:
      - LEAK=\${SOPS_AGE_KEY:-none}
      - LEAK2=\${SHIPARR_WEBHOOK_SECRET:-none}
      - LEAK3=\${SHIPARR_AUTH_PASSWORD:-none}
      - LEAK4=\${GITHUB_TOKEN:-none}
      - GREETING=\${GREETING:-unset}
`;
}

/** `user:` gets the decrypted value: the engine's error ("unable to find user <value>") echoes it during `up`. */
function echoCompose(image: string): string {
  return `services:
  app:
    image: ${JSON.stringify(image)}
    pull_policy: never
    command: ["sh", "-c", "exec sleep 3600"]
    user: "\${DB_PASSWORD}"
`;
}

function repoYaml(name: string, url: string, project: string, extra = ''): string {
  return `  ${name}:
    url: ${url}
    path: deploy
    env_file: .env.enc
    check_interval: 1
    compose_project: ${project}
    pull: never
    rollback: false
    healthcheck: { timeout: 20 }
${extra}`;
}

describe('secrets hygiene end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let hooks: Server;
  let tmp = '';
  let image = '';
  const projects: Record<string, string> = {};
  const saved = Object.fromEntries(Object.keys(DAEMON_ENV).map((k) => [k, process.env[k]]));

  const finished = (key: string) =>
    until(
      () => daemon!.store.listDeployments(key, { limit: 10 }).items.find((r) => r.finishedAt !== null),
      `a finished deployment of ${key}`,
      90_000,
    );
  const api = async (p: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${daemon!.url}${p}`, { headers: { authorization: AUTH } });
    return { status: res.status, text: await res.text() };
  };

  /** Commits `link` → `target` as a git symlink (mode 120000) with the git CLI, then pushes to the served repo. */
  async function commitSymlink(name: string, link: string, target: string): Promise<void> {
    const home = await mkdtemp(path.join(tmp, 'git-home-'));
    const work = path.join(home, 'work');
    const env = { ...isolatedGitEnv(home), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't' };
    const g = (args: string[], cwd = work) => run('git', args, { cwd, env: { ...env, GIT_COMMITTER_EMAIL: 't@t' } });
    await g(['clone', '-q', path.join(git.root, `${name}.git`), work], home);
    await run('ln', ['-s', target, link], { cwd: work });
    await g(['add', '--all']);
    await g(['commit', '-q', '-m', 'symlinked env file']);
    await g(['push', '-q', 'origin', 'HEAD']);
  }

  before(async () => {
    git = await startGitServer();
    hooks = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-hygiene-'));
    for (const k of ['leak', 'echo', 'sym']) projects[k] = uniqueProjectName(`e2e-hyg-${k}`);
    const enc = (entries: { key: string; value: string }[]) =>
      sopsEncryptDotenv(entries, { recipients: [me.recipient] }).text;
    await git.createRepo('leak', {
      'deploy/compose.yaml': leakCompose(image),
      'deploy/.env.enc': enc([{ key: 'GREETING', value: 'hello' }]),
    });
    await git.createRepo('echo', {
      'deploy/compose.yaml': echoCompose(image),
      'deploy/.env.enc': enc([{ key: 'DB_PASSWORD', value: DB_PASSWORD }]),
    });
    await git.createRepo('sym', {
      'deploy/compose.yaml': leakCompose(image),
      'deploy/real.env.enc': enc([{ key: 'GREETING', value: 'from-a-symlinked-file' }]),
    });
    await commitSymlink('sym', 'deploy/.env.enc', 'real.env.enc');
    const port = (hooks.address() as AddressInfo).port;
    // The daemon's process environment holds its secrets, as in production (worker threads copy it at start).
    Object.assign(process.env, DAEMON_ENV);
    daemon = await startTestDaemon({
      projects: {
        'hyg.yaml': `project: hyg
repositories:
${repoYaml('leak', git.repoUrl('leak'), projects.leak!, `    notifications:\n      success:\n        - generic+http://127.0.0.1:${port}/api/${HOOK_ID}?sig=abc\n        - ntfy://127.0.0.1:${port}/${TOPIC}?scheme=http\n`)}${repoYaml('echo', git.repoUrl('echo'), projects.echo!)}${repoYaml('sym', git.repoUrl('sym'), projects.sym!)}`,
      },
      env: DAEMON_ENV,
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    for (const p of Object.values(projects)) {
      await composeDown(p);
      await removeProjectContainers(p);
    }
    await git?.close();
    await new Promise<void>((r) => hooks.close(() => r()));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('a compose file cannot read the daemon secrets through ${…}: the container gets the defaults', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await finished('hyg/leak');
    assert.equal(d.status, 'success', d.error ?? '');
    const id = (
      await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${projects.leak}`])
    ).stdout.trim();
    const env = (await docker(['exec', id, 'env'])).stdout;
    assert.match(env, /^LEAK=none$/m);
    assert.match(env, /^LEAK2=none$/m);
    assert.match(env, /^LEAK3=none$/m);
    assert.match(env, /^LEAK4=none$/m);
    // The project's own decrypted .env still reaches compose.
    assert.match(env, /^GREETING=hello$/m);
    const inspect = (await docker(['inspect', id])).stdout;
    for (const v of Object.values(DAEMON_ENV)) if (v.length > 5) assert.equal(inspect.includes(v), false);
  });

  test('notification URLs are stored and served with the webhook path/query and the ntfy topic masked', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await until(
      () =>
        daemon!.store.listDeployments('hyg/leak', { limit: 10 }).items.find((r) => (r.notifications?.length ?? 0) >= 2),
      'notification results',
      30_000,
    );
    const stored = JSON.stringify(d.notifications);
    assert.match(stored, /generic\+http:\/\/127\.0\.0\.1:\d+\/\*\*\*\?\*\*\*/);
    assert.match(stored, /ntfy:\/\/127\.0\.0\.1:\d+\/\*\*\*\?scheme=http/);
    const list = await api(`/api/repositories/${encodeURIComponent('hyg/leak')}/deployments`);
    const logs = await api(`/api/deployments/${d.id}/logs`);
    assert.equal(list.status, 200, list.text);
    assert.equal(logs.status, 200, logs.text);
    assert.match(logs.text, /notifying: ntfy/);
    for (const text of [stored, list.text, logs.text, daemon!.store.getDeploymentLogs(d.id) ?? '']) {
      assert.equal(text.includes(TOPIC), false, 'the ntfy topic is shown');
      assert.equal(text.includes(HOOK_ID), false, 'the webhook path is shown');
      assert.equal(text.includes('sig=abc'), false, 'the webhook query is shown');
    }
  });

  test('a decrypted value compose echoes during up is masked in the log, the error and the API', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await finished('hyg/echo');
    assert.equal(d.status, 'failed');
    assert.equal(d.stage, 'applying');
    const stored = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(stored, /unable to find user \*\*\*/, stored);
    const logs = await api(`/api/deployments/${d.id}/logs`);
    const row = await api(`/api/deployments/${d.id}`);
    assert.equal(logs.status, 200);
    assert.match(logs.text, /unable to find user \*\*\*/);
    assert.match(d.error ?? '', /\*\*\*/);
    for (const text of [stored, logs.text, row.text, d.error ?? '']) assert.equal(text.includes(DB_PASSWORD), false);
  });

  test('a committed symlink .env.enc fails at decrypting naming the file; nothing is decrypted or written', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await finished('hyg/sym');
    assert.equal(d.status, 'failed');
    assert.equal(d.stage, 'decrypting');
    assert.match(d.error ?? '', /SOPS_BAD_PATH/);
    assert.match(d.error ?? '', /\.env\.enc is a symlink/);
    const dir = path.join(daemon!.dataDir, 'deployments', 'hyg', 'sym', 'deploy');
    assert.ok((await lstat(path.join(dir, '.env.enc'))).isSymbolicLink(), 'the checkout holds the git symlink');
    await assert.rejects(access(path.join(dir, '.env')), 'no plaintext .env was written');
    assert.deepEqual((await readdir(dir)).sort(), ['.env.enc', 'compose.yaml', 'real.env.enc']);
    const ps = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${projects.sym}`]);
    assert.equal(ps.stdout.trim(), '', 'compose never ran');
  });
});
