/** @module The real Piscina pool: async tasks share a warm worker, a crash is a transient result, an abort rejects. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool, createTaskRunner } from '../../../src/workers/pool.ts';
import { silentLogger } from '../../../src/logger.ts';
import { startGitServer } from '../../helpers/git-server.ts';
import { until } from '../../helpers/wait.ts';

/**
 * A gate in front of the git server: requests are held until `open()`, so a test sees how many are in flight at
 * once (each held request is a task waiting on the network inside its worker).
 */
async function startGate(
  target: string,
): Promise<{ url: string; readonly held: number; open(): void; close(): Promise<void> }> {
  const held: (() => void)[] = [];
  let isOpen = false;
  const server = http.createServer((req, res) => {
    const forward = () => {
      const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (isOpen) forward();
    else held.push(forward);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get held() {
      return held.length;
    },
    open() {
      isOpen = true;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

test('one worker runs several checks at once; a crashing task is a transient TASK_CRASHED result; an aborted one rejects', async () => {
  const git = await startGitServer();
  const pool = createPool({ maxThreads: 1, log: silentLogger() });
  const runTask = createTaskRunner(pool);
  const gate = await startGate(git.baseUrl);
  const abortGate = await startGate(git.baseUrl);
  try {
    await git.createRepo('r', { 'a.txt': 'x' });
    assert.equal(pool.threads.length, 1, 'a single worker thread');
    // Eight checks, each waiting at the gate for its first request to be answered: all eight are in flight together
    // in the one worker (one task at a time per worker would leave seven queued, and only one request held).
    const runs = Array.from({ length: 8 }, () =>
      runTask('git-check', { url: `${gate.url}/r.git`, branch: 'main', timeoutMs: 60_000 }),
    );
    await until(() => gate.held === 8, 'eight checks in flight at once', 30_000, 10);
    gate.open();
    const results = await Promise.all(runs);
    assert.ok(
      results.every((r) => r.ok),
      JSON.stringify(results),
    );
    assert.equal(pool.threads.length, 1, 'the same single worker served them all');

    const crashed = (await runTask('no-such-task' as never, {} as never)) as {
      ok: boolean;
      code?: string;
      transient?: boolean;
    };
    assert.equal(crashed.ok, false);
    assert.equal(crashed.code, 'TASK_CRASHED');
    assert.equal(crashed.transient, true);

    // Aborted while its request is held (the task is running in the worker): the run rejects.
    const ac = new AbortController();
    const pending = runTask(
      'git-check',
      { url: `${abortGate.url}/r.git`, branch: 'main', timeoutMs: 60_000 },
      ac.signal,
    );
    await until(() => abortGate.held === 1, 'the check to reach the remote', 30_000, 10);
    ac.abort();
    await assert.rejects(pending);
  } finally {
    await gate.close();
    await abortGate.close();
    await pool.destroy();
    await git.close();
  }
});
