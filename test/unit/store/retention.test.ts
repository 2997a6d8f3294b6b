/** @module History retention (`pruneHistory`) and plaintext bookkeeping on a real SQLite file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FinalDeploymentStatus } from '../../../src/domain/types.ts';
import { loadSettings } from '../../../src/config/settings.ts';
import { SettingsError } from '../../../src/errors.ts';
import { Store, StoreError } from '../../../src/store/index.ts';
import { openStore, project } from './helpers.ts';

const setup = (t: { after: (fn: () => void) => void }) => openStore(t, [project('home', ['media', 'dns'])]);

/** Creates `n` deployments of `repoKey`, oldest first; `status(i)` is the final status of the i-th (null = left open). */
function seed(store: Store, repoKey: string, n: number, status: (i: number) => FinalDeploymentStatus | null): number[] {
  const ids: number[] = [];
  store.db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const { id } = store.createDeployment({ repoKey, trigger: 'poll', status: 'running', commit: `c${i}` });
      store.appendDeploymentLog(id, `log of row ${i}\n`);
      const s = status(i);
      if (s) store.finishDeployment(id, { status: s });
      ids.push(id);
    }
  })();
  return ids;
}

const idsOf = (store: Store, repoKey: string): number[] =>
  (
    store.db
      .prepare(
        'SELECT d.id FROM deployments d JOIN repositories r ON r.id = d.repository_id WHERE r.key = ? ORDER BY d.id',
      )
      .all(repoKey) as { id: number }[]
  ).map((r) => r.id);

test('1,050 rows, keep 1,000: the 50 oldest finished rows go with their logs, the newest 1,000 stay', async (t) => {
  const { store, file } = setup(t);
  // The newest success (row 1,040) is inside the window; older successes are plain history.
  const media = seed(store, 'home/media', 1050, (i) => (i === 1040 || i % 100 === 0 ? 'success' : 'failed'));
  const dns = seed(store, 'home/dns', 30, () => 'success');

  const r = await store.pruneHistory(1000);
  assert.deepEqual(r, { deleted: 50, batches: 1 });
  assert.deepEqual(idsOf(store, 'home/media'), media.slice(50));
  assert.deepEqual(idsOf(store, 'home/dns'), dns, 'another repository below the limit is untouched');
  assert.equal(store.getDeploymentLogs(media[49]!), undefined, 'the log went with its row');
  assert.equal(store.getDeploymentLogs(media[50]!), 'log of row 50\n');
  assert.deepEqual(await store.pruneHistory(1000), { deleted: 0, batches: 0 }, 'a second pass has nothing to do');

  // The file really shrank in rows: a fresh connection sees the same.
  store.close();
  const again = Store.open(file);
  t.after(() => again.close());
  assert.equal(idsOf(again, 'home/media').length, 1000);
});

test('outside the window: an unfinished row, the newest success and pending plaintext are never pruned', async (t) => {
  const { store } = setup(t);
  const ids = seed(store, 'home/media', 1050, (i) => (i === 5 ? null : i === 10 ? 'success' : 'failed'));
  store.recordPlaintext(ids[7]!, [{ path: '/x/.env', dev: '1', ino: '2', size: '3', mtimeNs: '4' }]);

  const r = await store.pruneHistory(1000);
  assert.equal(r.deleted, 47);
  const kept = idsOf(store, 'home/media');
  assert.deepEqual(kept, [ids[5], ids[7], ids[10], ...ids.slice(50)]);

  // Once its plaintext is handled, row 7 is ordinary history again; the open row and the last success stay.
  store.markPlaintextHandled(ids[7]!);
  assert.equal((await store.pruneHistory(1000)).deleted, 1);
  assert.deepEqual(idsOf(store, 'home/media'), [ids[5], ids[10], ...ids.slice(50)]);
});

test('keep 0 keeps everything; a bad keep is refused', async (t) => {
  const { store } = setup(t);
  seed(store, 'home/media', 40, () => 'failed');
  assert.deepEqual(await store.pruneHistory(0), { deleted: 0, batches: 0 });
  assert.equal(idsOf(store, 'home/media').length, 40);
  await assert.rejects(
    store.pruneHistory(-1),
    (e: unknown) => e instanceof StoreError && e.code === 'STORE_INVALID_INPUT',
  );
});

test('a large backlog is pruned in small batches with the event loop running in between', async (t) => {
  const { store } = setup(t);
  const ids = seed(store, 'home/media', 5000, () => 'failed');
  let ticks = 0;
  let ticking = true;
  const tick = () => {
    ticks += 1;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const r = await store.pruneHistory(100);
  ticking = false;
  assert.equal(r.deleted, 4900);
  assert.equal(r.batches, Math.ceil(4900 / 100));
  assert.ok(ticks >= r.batches - 1, `the event loop ran between batches (${ticks} ticks for ${r.batches} batches)`);
  assert.deepEqual(idsOf(store, 'home/media'), ids.slice(4900));
});

test('plaintext records: merged by path, listed as pending once finished, owned by the newest rows', (t) => {
  const { store } = setup(t);
  const { id } = store.createDeployment({ repoKey: 'home/media', trigger: 'poll', status: 'running' });
  const f = (p: string, ino: string) => ({ path: p, dev: '9', ino, size: '12', mtimeNs: '1700000000000000000' });
  store.recordPlaintext(id, [f('/c/.env', '1')]);
  store.recordPlaintext(id, [f('/c/.env', '2'), f('/c/cfg.yaml', '3')]);
  assert.deepEqual(store.pendingPlaintext(), [], 'an open row is not swept (its deploy may still be running)');
  assert.deepEqual(store.ownedPlaintext('home/media'), [f('/c/.env', '2'), f('/c/cfg.yaml', '3')]);
  assert.deepEqual(store.ownedPlaintext('home/dns'), []);

  store.markInterrupted();
  assert.deepEqual(store.pendingPlaintext(), [
    { deploymentId: id, repoKey: 'home/media', files: [f('/c/.env', '2'), f('/c/cfg.yaml', '3')] },
  ]);
  store.markPlaintextHandled(id);
  assert.deepEqual(store.pendingPlaintext(), []);
  assert.equal(store.ownedPlaintext('home/media').length, 2, 'the record stays: it tells kept files apart');
  assert.throws(
    () => store.recordPlaintext(999_999, []),
    (e: unknown) => e instanceof StoreError && e.code === 'STORE_NOT_FOUND',
  );
});

test('SHIPARR_HISTORY_KEEP: default 1000, 0 keeps all, a bad value is a settings error naming it', () => {
  assert.equal(loadSettings({}).historyKeep, 1000);
  assert.equal(loadSettings({ SHIPARR_HISTORY_KEEP: '0' }).historyKeep, 0);
  assert.equal(loadSettings({ SHIPARR_HISTORY_KEEP: '250' }).historyKeep, 250);
  assert.throws(
    () => loadSettings({ SHIPARR_HISTORY_KEEP: 'lots' }),
    (e: unknown) => e instanceof SettingsError && /SHIPARR_HISTORY_KEEP: must be a whole number/.test(e.message),
  );
});
