/** @module Boot recovery: open deployments left by a crash become interrupted; self-updates are left for the caller. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INTERRUPTED_ERROR, Store } from '../../../src/store/index.ts';
import { manualClock, project, tempDb } from './helpers.ts';
import { listDeploymentsByStatus } from '../../helpers/store-queries.ts';

test('after a crash, pending and running rows become interrupted; finished and self-update rows are untouched', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  const clock = manualClock();

  // First process: leaves work open and then "crashes" (the connection is dropped without finishing).
  const before = Store.open(tmp.file, { now: clock.now });
  before.syncConfig([project('home', ['media', 'dns', 'shiparr'])]);
  const pending = before.createDeployment({ repoKey: 'home/media', trigger: 'poll', status: 'pending' });
  const running = before.createDeployment({ repoKey: 'home/dns', trigger: 'webhook', status: 'running', commit: 'd1' });
  before.updateDeployment(running.id, { stage: 'applying' });
  const finished = before.createDeployment({ repoKey: 'home/media', trigger: 'api', status: 'running', commit: 'm1' });
  before.finishDeployment(finished.id, { status: 'success' });
  const self = before.createDeployment({
    repoKey: 'home/shiparr',
    trigger: 'self-update',
    status: 'running',
    commit: 's2',
    selfUpdate: true,
  });
  const finishedBefore = before.getDeployment(finished.id);
  before.db.close(); // no clean shutdown path

  clock.advance(60_000);
  const after = Store.open(tmp.file, { now: clock.now });
  t.after(() => after.close());
  const interrupted = after.markInterrupted({ exceptSelfUpdate: true });
  assert.deepEqual(
    interrupted.map((d) => d.id),
    [pending.id, running.id],
  );
  for (const d of interrupted) {
    assert.equal(d.status, 'interrupted');
    assert.equal(d.error, INTERRUPTED_ERROR);
    assert.equal(d.finishedAt, '2025-01-01T00:01:00.000Z');
    assert.equal(d.durationMs, 60_000);
  }
  assert.equal(after.getDeployment(running.id)?.stage, 'applying', 'the stage reached is kept');
  assert.deepEqual(after.getDeployment(finished.id), finishedBefore);
  assert.equal(after.getRepository('home/dns')?.lastCommit, null, 'an interrupted deployment is not a success');

  const open = after.openSelfUpdates();
  assert.deepEqual(
    open.map((d) => [d.id, d.status, d.selfUpdate]),
    [[self.id, 'running', true]],
  );
  assert.deepEqual(
    listDeploymentsByStatus(after, 'running').map((d) => d.id),
    [self.id],
  );

  // The caller finalises the self-update; a second boot finds nothing open.
  after.finishDeployment(self.id, { status: 'success' });
  assert.equal(after.getRepository('home/shiparr')?.lastCommit, 's2');
  assert.deepEqual(after.markInterrupted(), []);
  assert.deepEqual(after.openSelfUpdates(), []);
});

test('markInterrupted defaults to sparing self-updates and can include them', (t) => {
  const store = Store.open(':memory:');
  t.after(() => store.close());
  store.syncConfig([project('home', ['shiparr'])]);
  const self = store.createDeployment({ repoKey: 'home/shiparr', trigger: 'api', status: 'pending' });
  store.updateDeployment(self.id, { selfUpdate: true });
  assert.deepEqual(store.markInterrupted(), []);
  assert.equal(store.openSelfUpdates().length, 1);
  assert.deepEqual(
    store.markInterrupted({ exceptSelfUpdate: false }).map((d) => [d.id, d.status]),
    [[self.id, 'interrupted']],
  );
  assert.deepEqual(store.openSelfUpdates(), []);
});
