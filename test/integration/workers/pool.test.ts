/** @module The real Piscina pool: tasks share warm workers, a crash is a transient result, an abort rejects. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool, createTaskRunner } from '../../../src/workers/pool.ts';
import { silentLogger } from '../../../src/logger.ts';
import { startGitServer } from '../../helpers/git-server.ts';

test('concurrent checks share the workers; a crashing task is a transient TASK_CRASHED result; an aborted one rejects', async () => {
  const git = await startGitServer();
  const pool = createPool({ maxThreads: 1, log: silentLogger() });
  const runTask = createTaskRunner(pool);
  try {
    await git.createRepo('r', { 'a.txt': 'x' });
    git.setLatency(300);
    // With one thread and one task per worker these would run one after another (≥ 8 × 300 ms of latency).
    const results = await Promise.all(
      Array.from({ length: 8 }, () => runTask('git-check', { url: git.repoUrl('r'), branch: 'main', timeoutMs: 20_000 })),
    );
    assert.ok(results.every((r) => r.ok));
    assert.ok(pool.threads.length === 1, 'a single worker served them all');
    git.setLatency(0);

    const crashed = (await runTask('no-such-task' as never, {} as never)) as { ok: boolean; code?: string; transient?: boolean };
    assert.equal(crashed.ok, false);
    assert.equal(crashed.code, 'TASK_CRASHED');
    assert.equal(crashed.transient, true);

    const ac = new AbortController();
    git.setLatency(2_000);
    const pending = runTask('git-check', { url: git.repoUrl('r'), branch: 'main', timeoutMs: 20_000 }, ac.signal);
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(pending);
  } finally {
    git.setLatency(0);
    await pool.destroy();
    await git.close();
  }
});
