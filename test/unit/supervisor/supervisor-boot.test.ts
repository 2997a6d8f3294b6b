/**
 * @module Supervisor boot at 1,000 repositories with a real SQLite file: the actors are spawned in slices, and the
 * event loop serves a timer and an HTTP request between them (not timed: what is asserted is the order of events).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Supervisor, type LoadedConfig } from '../../../src/supervisor/supervisor.ts';
import { Store } from '../../../src/store/index.ts';
import { silentLogger } from '../../../src/logger.ts';
import type { RunTask } from '../../../src/workers/types.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

const COUNT = 1_000;

test('boot at 1,000 repositories spawns the actors in slices; a timer and an HTTP request are served in between', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-boot-'));
  const store = Store.open(path.join(dir, 'shiparr.db'));
  const repos = Array.from({ length: COUNT }, (_, i) => repoConfig('p', `r${i}`, { localPath: `/tmp/none/r${i}` }));
  const cfg: LoadedConfig = {
    projects: [{ name: 'p', file: '/cfg/p.yaml', repositories: repos }],
    errors: [],
    files: [{ file: '/cfg/p.yaml', project: 'p', ok: true }],
  };
  const runTask = (async () => ({ ok: true, durationMs: 1, commit: 'c1' })) as unknown as RunTask;
  const sup = new Supervisor({
    store,
    runTask,
    verify: async () => ({ ok: true, summary: 'ok' }),
    notify: async () => [],
    loadConfig: async () => cfg,
    log: silentLogger(),
    maxConcurrentDeploys: 1,
    secrets: {},
    checkOnStart: false,
  });
  // Not spawned yet = the supervisor still shows the entry's own `boot` state (a child shows its own state).
  const spawned = (key: string) => sup.get(key)?.state !== 'boot';
  const server = http.createServer((_req, res) => res.end(JSON.stringify({ lastSpawned: spawned(`p/r${COUNT - 1}`) })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    let booted = false;
    sup.start(cfg);
    const whenBooted = sup.whenBooted().then(() => (booted = true));
    assert.equal(spawned('p/r0'), true, 'the first slice is spawned by start()');
    assert.equal(spawned(`p/r${COUNT - 1}`), false, 'the last one is not: the rest comes in later slices');

    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(spawned(`p/r${COUNT - 1}`)), 0));
    const answer = fetch(`http://127.0.0.1:${port}/`).then(
      async (res) => ((await res.json()) as { lastSpawned: boolean }).lastSpawned,
    );
    assert.equal(await timer, false, 'a timer ran before the last actor was spawned');
    assert.equal(await answer, false, 'an HTTP request was answered before the last actor was spawned');
    assert.equal(booted, false);

    await whenBooted;
    assert.equal(spawned(`p/r${COUNT - 1}`), true);
    assert.equal(sup.list().length, COUNT);
    assert.equal(
      sup.list().filter((r) => r.state === 'boot').length,
      0,
      'every repository has its actor once whenBooted resolves',
    );
    await sup.stop(1_000);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('stopping during boot ends the slices: whenBooted settles and the rest is never spawned', async () => {
  const store = Store.open(':memory:');
  const repos = Array.from({ length: COUNT }, (_, i) => repoConfig('q', `r${i}`, { localPath: `/tmp/none/q${i}` }));
  const cfg: LoadedConfig = {
    projects: [{ name: 'q', file: '/cfg/q.yaml', repositories: repos }],
    errors: [],
    files: [{ file: '/cfg/q.yaml', project: 'q', ok: true }],
  };
  const sup = new Supervisor({
    store,
    runTask: (async () => ({ ok: true, durationMs: 1, commit: 'c1' })) as unknown as RunTask,
    verify: async () => ({ ok: true, summary: 'ok' }),
    notify: async () => [],
    loadConfig: async () => cfg,
    log: silentLogger(),
    maxConcurrentDeploys: 1,
    secrets: {},
    checkOnStart: false,
  });
  sup.start(cfg);
  await sup.stop(1_000);
  await sup.whenBooted();
  assert.equal(sup.get(`q/r${COUNT - 1}`)?.state, 'boot', 'the last repository was never spawned');
  store.close();
});
