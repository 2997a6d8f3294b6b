/** @module Deployment lifecycle, durations, success bookkeeping, paging and queries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError } from '../../../src/store/index.ts';
import { openStore, project } from './helpers.ts';

const isCode = (code: string) => (e: unknown) => e instanceof StoreError && e.code === code;

const setup = (t: { after: (fn: () => void) => void }) => openStore(t, [project('home', ['media', 'dns'])]);

test('a deployment goes pending → running → success with stages, timestamps and an exact duration', (t) => {
  const { store, clock } = setup(t);
  const d = store.createDeployment({
    repoKey: 'home/media',
    trigger: 'poll',
    status: 'pending',
    previousCommit: 'c0',
    configHash: 'h1',
  });
  assert.equal(d.status, 'pending');
  assert.equal(d.trigger, 'poll');
  assert.equal(d.repoKey, 'home/media');
  assert.equal(d.startedAt, '2025-01-01T00:00:00.000Z');
  assert.equal(d.finishedAt, null);
  assert.equal(d.durationMs, null);
  assert.equal(d.selfUpdate, false);
  assert.equal(d.logBytes, 0);

  clock.advance(250);
  store.updateDeployment(d.id, { status: 'running', stage: 'pulling' });
  store.updateDeployment(d.id, { commit: 'c1' });
  store.updateDeployment(d.id, { stage: 'applying' });
  const mid = store.getDeployment(d.id);
  assert.equal(mid?.status, 'running');
  assert.equal(mid?.stage, 'applying');
  assert.equal(mid?.commit, 'c1');
  assert.equal(mid?.previousCommit, 'c0', 'fields not in the patch are untouched');

  clock.advance(12_345);
  const done = store.finishDeployment(d.id, {
    status: 'success',
    stage: 'verifying',
    notifications: [{ url: 'discord://***@id', ok: true }],
  });
  assert.equal(done.status, 'success');
  assert.equal(done.stage, 'verifying');
  assert.equal(done.finishedAt, '2025-01-01T00:00:12.595Z');
  assert.equal(done.durationMs, 12_595);
  assert.deepEqual(done.notifications, [{ url: 'discord://***@id', ok: true }]);
  assert.deepEqual(store.getDeployment(d.id), done);
});

test('a success moves the repository last_commit, last_deployed_at and config_hash; a failure does not', (t) => {
  const { store, clock } = setup(t);
  const ok = store.createDeployment({
    repoKey: 'home/media',
    trigger: 'api',
    status: 'running',
    commit: 'c1',
    configHash: 'h1',
  });
  clock.advance(1000);
  store.finishDeployment(ok.id, { status: 'success' });
  let r = store.getRepository('home/media');
  assert.equal(r?.lastCommit, 'c1');
  assert.equal(r?.lastDeployedAt, '2025-01-01T00:00:01.000Z');
  assert.equal(r?.configHash, 'h1');
  assert.equal(store.getRepository('home/dns')?.lastCommit, null, 'other repositories untouched');

  const bad = store.createDeployment({
    repoKey: 'home/media',
    trigger: 'poll',
    status: 'running',
    previousCommit: 'c1',
    configHash: 'h2',
  });
  clock.advance(1000);
  const failed = store.finishDeployment(bad.id, {
    status: 'rolled_back',
    stage: 'verifying',
    commit: 'c2',
    error: 'verifying: unhealthy',
    rolledBackTo: 'c1',
  });
  assert.equal(failed.commit, 'c2');
  assert.equal(failed.rolledBackTo, 'c1');
  assert.equal(failed.error, 'verifying: unhealthy');
  r = store.getRepository('home/media');
  assert.equal(r?.lastCommit, 'c1');
  assert.equal(r?.configHash, 'h1');
  assert.equal(r?.lastDeployedAt, '2025-01-01T00:00:01.000Z');

  // A commit learned only at finish time is used for the repository too.
  const late = store.createDeployment({ repoKey: 'home/media', trigger: 'webhook', status: 'running' });
  store.finishDeployment(late.id, { status: 'success', commit: 'c3' });
  assert.equal(store.getRepository('home/media')?.lastCommit, 'c3');
  assert.equal(store.getRepository('home/media')?.configHash, 'h1', 'no hash recorded keeps the previous one');
  const after = store.createDeployment({ repoKey: 'home/media', trigger: 'poll', status: 'running', commit: 'c4' });
  store.finishDeployment(after.id, { status: 'failed', stage: 'applying' });
  assert.equal(store.latestDeployment('home/media')?.id, after.id);
});

test('finished deployments are final: updates and a second finish are conflicts; logs and notifications may still be added', (t) => {
  const { store } = setup(t);
  const d = store.createDeployment({ repoKey: 'home/media', trigger: 'cli', status: 'running', commit: 'c1' });
  store.finishDeployment(d.id, { status: 'failed', stage: 'applying', error: 'compose up failed' });
  assert.throws(
    () => store.finishDeployment(d.id, { status: 'success' }),
    (e: unknown) => isCode('STORE_CONFLICT')(e) && (e as StoreError).status === 409,
  );
  assert.throws(() => store.updateDeployment(d.id, { stage: 'verifying' }), isCode('STORE_CONFLICT'));
  assert.equal(store.getDeployment(d.id)?.status, 'failed');
  assert.equal(store.getRepository('home/media')?.lastCommit, null);

  store.appendDeploymentLog(d.id, 'result: failed\n');
  store.setDeploymentNotifications(d.id, [{ url: 'ntfy://ntfy.sh/topic', ok: false, error: 'HTTP 500' }]);
  assert.equal(store.getDeploymentLogs(d.id), 'result: failed\n');
  assert.deepEqual(store.getDeployment(d.id)?.notifications, [
    { url: 'ntfy://ntfy.sh/topic', ok: false, error: 'HTTP 500' },
  ]);
});

test('invalid writes are typed errors', (t) => {
  const { store } = setup(t);
  assert.throws(
    () => store.createDeployment({ repoKey: 'home/nope', trigger: 'api', status: 'pending' }),
    isCode('STORE_NOT_FOUND'),
  );
  // Values from untyped callers (JSON bodies) are checked at runtime.
  const loose = store as unknown as {
    createDeployment(i: Record<string, unknown>): unknown;
    updateDeployment(id: number, p: Record<string, unknown>): void;
    finishDeployment(id: number, r: Record<string, unknown>): unknown;
  };
  assert.throws(
    () => loose.createDeployment({ repoKey: 'home/media', trigger: 'cron', status: 'pending' }),
    isCode('STORE_INVALID_INPUT'),
  );
  assert.throws(
    () => loose.createDeployment({ repoKey: 'home/media', trigger: 'api', status: 'success' }),
    isCode('STORE_INVALID_INPUT'),
  );
  const d = store.createDeployment({ repoKey: 'home/media', trigger: 'api', status: 'pending' });
  assert.throws(() => loose.updateDeployment(d.id, { status: 'success' }), isCode('STORE_INVALID_INPUT'));
  assert.throws(() => loose.finishDeployment(d.id, { status: 'running' }), isCode('STORE_INVALID_INPUT'));
  assert.throws(() => store.updateDeployment(9999, { stage: 'x' }), isCode('STORE_NOT_FOUND'));
  assert.throws(() => store.finishDeployment(9999, { status: 'failed' }), isCode('STORE_NOT_FOUND'));
  assert.throws(() => store.appendDeploymentLog(9999, 'x'), isCode('STORE_NOT_FOUND'));
  assert.throws(() => store.setDeploymentNotifications(9999, []), isCode('STORE_NOT_FOUND'));
  assert.equal(store.getDeployment(9999), undefined);
  assert.equal(store.getDeploymentLogs(9999), undefined);
  assert.equal(store.getDeployment(d.id)?.status, 'pending', 'the refused writes changed nothing');
});

test('errors and notification results are masked before they are stored', (t) => {
  const { store } = setup(t);
  const d = store.createDeployment({ repoKey: 'home/media', trigger: 'api', status: 'running' });
  store.updateDeployment(d.id, { error: 'fetch https://x:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/a.git failed' });
  assert.equal(store.getDeployment(d.id)?.error, 'fetch https://***@github.com/a.git failed');
  store.finishDeployment(d.id, {
    status: 'failed',
    notifications: [{ url: 'smtp://user:pw123456@mail.example:587', ok: true }],
  });
  const raw = store.db.prepare('SELECT notifications, error FROM deployments WHERE id = ?').get(d.id) as {
    notifications: string;
    error: string;
  };
  assert.ok(!raw.notifications.includes('pw123456'));
  assert.ok(!raw.error.includes('ghp_'));
});

test('history pages newest first by limit/before/nextBefore over 45 rows', (t) => {
  const { store, clock } = setup(t);
  const ids: number[] = [];
  for (let i = 0; i < 45; i++) {
    clock.advance(1000);
    const d = store.createDeployment({ repoKey: 'home/media', trigger: 'poll', status: 'running', commit: `c${i}` });
    store.finishDeployment(d.id, { status: i % 3 === 0 ? 'failed' : 'success' });
    ids.push(d.id);
    // Interleaved rows of another repository must not leak into the pages.
    store.createDeployment({ repoKey: 'home/dns', trigger: 'poll', status: 'pending' });
  }
  const newestFirst = [...ids].reverse();

  const p1 = store.listDeployments('home/media');
  assert.equal(p1.items.length, 20, 'default limit');
  assert.deepEqual(
    p1.items.map((d) => d.id),
    newestFirst.slice(0, 20),
  );
  assert.equal(p1.nextBefore, newestFirst[19]);

  const p2 = store.listDeployments('home/media', { limit: 20, before: p1.nextBefore ?? undefined });
  assert.deepEqual(
    p2.items.map((d) => d.id),
    newestFirst.slice(20, 40),
  );
  const p3 = store.listDeployments('home/media', { limit: 20, before: p2.nextBefore ?? undefined });
  assert.deepEqual(
    p3.items.map((d) => d.id),
    newestFirst.slice(40),
  );
  assert.equal(p3.nextBefore, null);

  const byId = store.listDeployments(store.getRepository('home/media')?.id ?? -1, { limit: 45 });
  assert.equal(byId.items.length, 45);
  assert.equal(byId.nextBefore, null, 'an exactly full last page has no next page');
  assert.equal(store.listDeployments('home/media', { limit: 100 }).items.length, 45);

  for (const limit of [0, 101, 2.5]) {
    assert.throws(() => store.listDeployments('home/media', { limit }), isCode('STORE_INVALID_INPUT'));
  }
  assert.throws(() => store.listDeployments('home/nope'), isCode('STORE_NOT_FOUND'));
  assert.throws(() => store.listDeployments(424242), isCode('STORE_NOT_FOUND'));

  assert.equal(store.latestDeployment('home/media')?.id, ids[44]);
});
