/** @module Deployment logs: appends, the 256 KiB cap (head kept + truncation marker), UTF-8 safety, masking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOG_LIMIT_BYTES, LOG_STORED_MAX_BYTES, Store, truncationMarker } from '../../../src/store/index.ts';
import { fitUtf8 } from '../../../src/store/log-cap.ts';
import { project, tempDb } from './helpers.ts';

function setup(t: { after: (fn: () => void) => void }) {
  const tmp = tempDb();
  const store = Store.open(tmp.file);
  t.after(() => {
    store.close();
    tmp.cleanup();
  });
  store.syncConfig([project('home', ['media'])]);
  const d = store.createDeployment({ repoKey: 'home/media', trigger: 'api', status: 'running' });
  return { store, id: d.id };
}

test('appended log text is kept in order and reported by size', (t) => {
  const { store, id } = setup(t);
  store.appendDeploymentLog(id, 'pulling: ok\n');
  store.appendDeploymentLog(id, '');
  store.appendDeploymentLog(id, 'applying: é✓\n');
  assert.equal(store.getDeploymentLogs(id), 'pulling: ok\napplying: é✓\n');
  assert.equal(store.getDeployment(id)?.logBytes, Buffer.byteLength('pulling: ok\napplying: é✓\n'));
  assert.equal(store.getDeployment(id)?.logTruncatedBytes, 0);
});

test('logs are capped at 256 KiB: the head is kept, the rest counted and marked', (t) => {
  const { store, id } = setup(t);
  const line = `${'x'.repeat(1023)}\n`; // 1 KiB
  for (let i = 0; i < 300; i++) store.appendDeploymentLog(id, line);
  const logs = store.getDeploymentLogs(id) ?? '';
  const dropped = 300 * 1024 - LOG_STORED_MAX_BYTES;
  assert.ok(Buffer.byteLength(logs) <= LOG_LIMIT_BYTES, 'kept text plus marker fit in 256 KiB');
  assert.ok(logs.startsWith(line.repeat(200)), 'the head is kept');
  assert.ok(logs.endsWith(truncationMarker(dropped)));
  assert.match(logs, new RegExp(`…\\[truncated ${dropped} bytes\\]\\n$`));
  const d = store.getDeployment(id);
  assert.equal(d?.logBytes, LOG_STORED_MAX_BYTES);
  assert.equal(d?.logTruncatedBytes, dropped);

  // Still counted after finishing.
  store.finishDeployment(id, { status: 'success', commit: 'c1' });
  store.appendDeploymentLog(id, 'result: success\n');
  assert.equal(store.getDeployment(id)?.logTruncatedBytes, dropped + 16);
});

test('a single huge chunk is cut at a character boundary, never inside a multi-byte character', (t) => {
  const { store, id } = setup(t);
  store.appendDeploymentLog(id, 'a'); // shifts the cut so it lands inside a 3-byte character
  store.appendDeploymentLog(id, '€'.repeat(100_000)); // 300,000 bytes
  const logs = store.getDeploymentLogs(id) ?? '';
  assert.ok(!logs.includes('\uFFFD'), 'no replacement character from a split sequence');
  const kept = logs.slice(0, logs.indexOf('\n…[truncated'));
  assert.match(kept, /^a€+$/);
  const keptBytes = Buffer.byteLength(kept);
  assert.ok(keptBytes <= LOG_STORED_MAX_BYTES && keptBytes > LOG_STORED_MAX_BYTES - 3);
  assert.equal(store.getDeployment(id)?.logTruncatedBytes, 1 + 300_000 - keptBytes);
});

test('fitUtf8 splits by bytes at character boundaries', () => {
  assert.deepEqual(fitUtf8('hello', 10), { kept: 'hello', dropped: 0 });
  assert.deepEqual(fitUtf8('hello', 3), { kept: 'hel', dropped: 2 });
  assert.deepEqual(fitUtf8('hello', 0), { kept: '', dropped: 5 });
  assert.deepEqual(fitUtf8('aé', 2), { kept: 'a', dropped: 2 });
  assert.deepEqual(fitUtf8('a😀b', 4), { kept: 'a', dropped: 5 });
  assert.deepEqual(fitUtf8('a😀b', 5), { kept: 'a😀', dropped: 1 });
});

test('secrets that slipped into log text are masked before storage', (t) => {
  const { store, id } = setup(t);
  store.appendDeploymentLog(
    id,
    'key AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQ and Authorization: Bearer abcdefgh12345678\n',
  );
  const raw = store.db.prepare('SELECT logs FROM deployments WHERE id = ?').pluck().get(id) as string;
  assert.ok(!raw.includes('QQQQQQQQ'));
  assert.ok(!raw.includes('abcdefgh12345678'));
  assert.match(raw, /AGE-SECRET-KEY-1\*\*\*/);
});
