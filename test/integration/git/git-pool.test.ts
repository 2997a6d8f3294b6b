/** @module git-check and git-sync through the real Piscina pool (worker threads under tsx), as the actors call them. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Piscina } from 'piscina';
import { silentLogger } from '../../../src/logger.ts';
import { createPool, createTaskRunner } from '../../../src/workers/pool.ts';
import type { RunTask } from '../../../src/workers/types.ts';
import { startGitServer, type GitServer } from '../../helpers/git-server.ts';

describe('git tasks in the worker pool', () => {
  let server: GitServer;
  let pool: Piscina;
  let runTask: RunTask;
  let tmp: string;
  before(async () => {
    server = await startGitServer({ auth: { username: 'x-access-token', password: 'pool-token-123' } });
    pool = createPool({ maxThreads: 2, log: silentLogger() });
    runTask = createTaskRunner(pool);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-git-pool-'));
  });
  after(async () => {
    await pool.destroy();
    await server.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('checks, then syncs, a private repository from worker threads', async () => {
    const sha = await server.createRepo('stack', { 'compose.yaml': 'services: {}\n' });
    const check = await runTask('git-check', {
      url: server.repoUrl('stack'),
      branch: 'main',
      token: 'pool-token-123',
      timeoutMs: 20_000,
    });
    assert.deepEqual(check.ok && check.commit, sha);

    const dir = path.join(tmp, 'stack');
    const sync = await runTask('git-sync', {
      url: server.repoUrl('stack'),
      branch: 'main',
      dir,
      shallow: true,
      token: 'pool-token-123',
      timeoutMs: 20_000,
    });
    assert.deepEqual(sync.ok && { commit: sync.commit, cloned: sync.cloned }, { commit: sha, cloned: true });
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'services: {}\n');
  });

  it('returns expected failures as plain results across the thread boundary', async () => {
    const r = await runTask('git-check', {
      url: server.repoUrl('stack'),
      branch: 'main',
      token: 'wrong',
      timeoutMs: 20_000,
    });
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && { code: r.code, transient: r.transient }, { code: 'GIT_AUTH_FAILED', transient: false });
    assert.equal(typeof (!r.ok && r.message), 'string');
  });
});
