/** @module Opening the store: migrations keyed by user_version, pragmas, refusal of newer schemas, open errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION, Store, StoreError, migrate, readUserVersion } from '../../../src/store/index.ts';
import { project, tempDb } from './helpers.ts';

const tables = (db: Database.Database) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
    (r) => r.name,
  );
const indexes = (db: Database.Database) =>
  (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as { name: string }[]
  ).map((r) => r.name);

test('open on an empty path creates the parent directory, the schema and sets user_version', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  const store = Store.open(tmp.file);
  t.after(() => store.close());
  assert.ok(existsSync(tmp.file));
  assert.equal(readUserVersion(store.db), SCHEMA_VERSION);
  assert.equal(SCHEMA_VERSION, MIGRATIONS.length);
  assert.deepEqual(tables(store.db), ['actions', 'deployments', 'image_watch', 'projects', 'repositories']);
  assert.deepEqual(indexes(store.db), [
    'actions_repository_id',
    'deployments_plaintext_pending',
    'deployments_repository_id',
    'deployments_status',
    'repositories_project',
  ]);
  const cols = (store.db.prepare('PRAGMA table_info(deployments)').all() as { name: string }[]).map((c) => c.name);
  for (const c of [
    'id',
    'repository_id',
    'commit_hash',
    'status',
    'started_at',
    'finished_at',
    'logs',
    'trigger',
    'stage',
    'error',
    'previous_commit',
    'rolled_back_to',
    'plaintext_files',
    'plaintext_pending',
    'duration_ms',
    'config_hash',
    'notifications',
    'self_update',
  ]) {
    assert.ok(cols.includes(c), `deployments.${c}`);
  }
});

test('the connection runs in WAL mode with synchronous=NORMAL, foreign keys and a busy timeout', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  const store = Store.open(tmp.file);
  t.after(() => store.close());
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.journalMode, 'wal');
  assert.equal(store.db.pragma('synchronous', { simple: true }), 1);
  assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(store.db.pragma('busy_timeout', { simple: true }), 5000);
  store.syncConfig([project('demo', ['app'])]);
  assert.ok(existsSync(`${tmp.file}-wal`), 'writes go to the WAL file');
  // Foreign keys are enforced: a deployment of a missing repository is refused by SQLite itself.
  assert.throws(
    () =>
      store.db
        .prepare(
          "INSERT INTO deployments (repository_id, status, \"trigger\", started_at) VALUES (999, 'pending', 'api', 'x')",
        )
        .run(),
    /FOREIGN KEY/,
  );
});

test('reopening is idempotent: user_version unchanged and data kept', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  const first = Store.open(tmp.file);
  first.syncConfig([project('demo', ['app'])]);
  const d = first.createDeployment({ repoKey: 'demo/app', trigger: 'api', status: 'running', commit: 'c1' });
  first.close();
  first.close(); // twice is harmless

  const second = Store.open(tmp.file);
  t.after(() => second.close());
  assert.equal(readUserVersion(second.db), SCHEMA_VERSION);
  assert.deepEqual(migrate(second.db), { from: SCHEMA_VERSION, to: SCHEMA_VERSION });
  assert.equal(second.getRepository('demo/app')?.name, 'app');
  assert.equal(second.getDeployment(d.id)?.commit, 'c1');
});

test('a database written by a newer schema is refused and left byte-for-byte untouched', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  mkdirSync(path.dirname(tmp.file), { recursive: true });
  const raw = new Database(tmp.file);
  raw.exec('CREATE TABLE future (x INTEGER)');
  raw.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
  raw.close();
  const before = createHash('sha256').update(readFileSync(tmp.file)).digest('hex');

  assert.throws(
    () => Store.open(tmp.file),
    (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, 'STORE_SCHEMA_TOO_NEW');
      assert.match(err.message, new RegExp(`schema version ${SCHEMA_VERSION + 5}`));
      return true;
    },
  );
  assert.equal(createHash('sha256').update(readFileSync(tmp.file)).digest('hex'), before);
  assert.equal(existsSync(`${tmp.file}-wal`), false, 'WAL mode was not switched on');
  const check = new Database(tmp.file, { readonly: true });
  t.after(() => check.close());
  assert.equal(check.pragma('journal_mode', { simple: true }), 'delete');
});

test('migrate applies only pending migrations, each atomically, and rolls back a failing one', () => {
  const db = new Database(':memory:');
  try {
    const ok = ['CREATE TABLE a (x INTEGER)', 'CREATE TABLE b (y INTEGER)'];
    assert.deepEqual(migrate(db, ok.slice(0, 1)), { from: 0, to: 1 });
    assert.deepEqual(migrate(db, ok), { from: 1, to: 2 });
    assert.deepEqual(migrate(db, ok), { from: 2, to: 2 });

    const broken = [...ok, 'CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1)'];
    assert.throws(
      () => migrate(db, broken),
      (err: unknown) => err instanceof StoreError && err.code === 'STORE_MIGRATION_FAILED',
    );
    assert.equal(readUserVersion(db), 2);
    assert.deepEqual(tables(db), ['a', 'b'], 'table c of the failed migration was rolled back');
  } finally {
    db.close();
  }
});

test('a file that is not a SQLite database gives STORE_OPEN_FAILED', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  mkdirSync(path.dirname(tmp.file), { recursive: true });
  writeFileSync(tmp.file, 'this is not a database, just some text that is long enough to have a header'.repeat(20));
  assert.throws(
    () => Store.open(tmp.file),
    (err: unknown) => err instanceof StoreError && err.code === 'STORE_OPEN_FAILED',
  );
});

test('a parent path that is a file gives STORE_OPEN_FAILED', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  writeFileSync(path.join(tmp.dir, 'blocker'), 'x');
  assert.throws(
    () => Store.open(path.join(tmp.dir, 'blocker', 'shiparr.db')),
    (err: unknown) => err instanceof StoreError && err.code === 'STORE_OPEN_FAILED' && err.status === 500,
  );
});

test(':memory: works too', () => {
  const store = Store.open(':memory:');
  try {
    store.syncConfig([project('demo', ['app', 'db'])]);
    assert.equal(store.journalMode, 'memory');
    store.ping();
  } finally {
    store.close();
  }
  assert.throws(
    () => store.ping(),
    (e: unknown) => e instanceof StoreError && e.code === 'STORE_UNAVAILABLE' && e.status === 503,
  );
});

test('migration 4 rebuilds deployments with every row and column intact, and accepts reasons and skipped', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  mkdirSync(path.dirname(tmp.file), { recursive: true });
  const db = new Database(tmp.file);
  migrate(db, MIGRATIONS.slice(0, 3));
  const now = '2025-01-01T00:00:00.000Z';
  db.prepare(
    "INSERT INTO projects (id, name, file, created_at, updated_at) VALUES (1, 'web', '/config/projects/web.yaml', ?, ?)",
  ).run(now, now);
  db.prepare(
    `INSERT INTO repositories (id, project_id, name, key, url, branch, path, local_path, check_interval, created_at,
       updated_at) VALUES (1, 1, 'app', 'web/app', 'https://git.example.test/app.git', 'main', '.', '/data/app', 300, ?, ?)`,
  ).run(now, now);
  db.prepare(
    `INSERT INTO deployments (id, repository_id, commit_hash, status, "trigger", stage, error, started_at, finished_at,
       logs, logs_truncated, triggered_by, plaintext_files, plaintext_pending)
     VALUES (7, 1, 'abc', 'failed', 'api', 'applying', 'boom', ?, ?, 'log text', 3, 'token:ci', '[]', 1)`,
  ).run(now, now);
  db.close();

  const store = Store.open(tmp.file);
  t.after(() => store.close());
  assert.equal(readUserVersion(store.db), SCHEMA_VERSION);
  assert.ok(SCHEMA_VERSION >= 4);
  const old = store.getDeployment(7);
  assert.equal(old?.status, 'failed');
  assert.equal(old?.error, 'boom');
  assert.equal(old?.triggeredBy, 'token:ci');
  assert.equal(old?.logTruncatedBytes, 3);
  assert.equal(old?.reason, null);
  assert.equal(store.getDeploymentLogs(7)?.startsWith('log text'), true);
  assert.equal(
    (store.db.prepare('SELECT plaintext_pending AS p FROM deployments WHERE id = 7').get() as { p: number }).p,
    1,
  );
  assert.ok(indexes(store.db).includes('deployments_plaintext_pending'));

  const reason = { kind: 'forced', summary: 'deploy forced by token:ci', by: 'token:ci', via: 'api' } as const;
  const d = store.createDeployment({ repoKey: 'web/app', trigger: 'api', status: 'pending', reason });
  assert.ok(d.id > 7, 'ids continue after the copied rows');
  assert.deepEqual(d.reason, reason);
  const plan = [{ service: 'web', action: 'keep' as const, reasons: [] }];
  store.updateDeployment(d.id, { plan });
  const skipped = store.finishDeployment(d.id, { status: 'skipped' });
  assert.equal(skipped.status, 'skipped');
  assert.deepEqual(skipped.plan, plan);
  assert.equal(skipped.serviceImages, null);
});
