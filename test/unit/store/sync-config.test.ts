/** @module syncConfig upserts, deactivation, reactivation, keepProjects; persisted repository state. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store, StoreError } from '../../../src/store/index.ts';
import { manualClock, project, repo, tempDb } from './helpers.ts';
import { countDeployments, getProject } from '../../helpers/store-queries.ts';

function memStore(t: { after: (fn: () => void) => void }, clock = manualClock()): Store {
  const store = Store.open(':memory:', { now: clock.now });
  t.after(() => store.close());
  return store;
}

test('syncConfig adds projects and repositories and reports their keys', (t) => {
  const store = memStore(t);
  const r = store.syncConfig([project('home', ['media', 'dns']), project('lab', ['ci'])]);
  assert.deepEqual(r, { added: ['home/media', 'home/dns', 'lab/ci'], removed: [], changed: [] });
  assert.deepEqual(
    store.listProjects().map((p) => p.name),
    ['home', 'lab'],
  );
  const media = store.getRepository('home/media');
  assert.ok(media);
  assert.equal(media.project, 'home');
  assert.equal(media.projectId, getProject(store, 'home')?.id);
  assert.equal(media.localPath, '/data/deployments/home/media');
  assert.equal(media.checkInterval, 300);
  assert.equal(media.active, true);
  assert.equal(media.suspended, null);
  assert.equal(media.lastCommit, null);
  assert.deepEqual(store.getRepositoryById(media.id), media);
  assert.deepEqual(
    store.listRepositories({ project: 'home' }).map((x) => x.key),
    ['home/dns', 'home/media'],
  );
  assert.equal(getProject(store, 'home')?.file, '/config/projects/home.yaml');
});

test('syncConfig updates changed config columns and reports them; an identical sync changes nothing', (t) => {
  const clock = manualClock();
  const store = memStore(t, clock);
  store.syncConfig([project('home', ['media', 'dns'])]);
  const before = store.getRepository('home/dns');
  clock.advance(1000);
  const again = store.syncConfig([project('home', ['media', 'dns'])]);
  assert.deepEqual(again, { added: [], removed: [], changed: [] });
  assert.equal(store.getRepository('home/dns')?.updatedAt, before?.updatedAt, 'no write without a change');

  clock.advance(1000);
  const next = project('home', ['dns'], { description: 'new words', file: '/config/projects/home.yml' });
  next.repositories = [repo('home', 'media', { branch: 'prod', checkInterval: 60 }), repo('home', 'dns')];
  assert.deepEqual(store.syncConfig([next]), { added: [], removed: [], changed: ['home/media'] });
  const media = store.getRepository('home/media');
  assert.equal(media?.branch, 'prod');
  assert.equal(media?.checkInterval, 60);
  assert.equal(media?.updatedAt, '2025-01-01T00:00:02.000Z');
  assert.equal(getProject(store, 'home')?.description, 'new words');
  assert.equal(getProject(store, 'home')?.file, '/config/projects/home.yml');
});

test('repositories and projects leaving the config become inactive with history intact, and come back', (t) => {
  const store = memStore(t);
  store.syncConfig([project('home', ['media', 'dns']), project('lab', ['ci'])]);
  const d = store.createDeployment({ repoKey: 'home/dns', trigger: 'poll', status: 'running', commit: 'c1' });
  store.finishDeployment(d.id, { status: 'success' });
  store.updateRepositoryState('home/dns', { pinnedCommit: 'bad1', suspended: true });

  const r = store.syncConfig([project('home', ['media'])]);
  assert.deepEqual(r, { added: [], removed: ['home/dns', 'lab/ci'], changed: [] });
  assert.deepEqual(
    store.listRepositories().map((x) => x.key),
    ['home/media'],
  );
  assert.deepEqual(
    store.listRepositories({ includeInactive: true }).map((x) => [x.key, x.active]),
    [
      ['home/dns', false],
      ['home/media', true],
      ['lab/ci', false],
    ],
  );
  assert.deepEqual(
    store.listProjects().map((p) => p.name),
    ['home'],
  );
  assert.equal(getProject(store, 'lab')?.active, false);
  assert.equal(countDeployments(store, 'home/dns'), 1, 'history kept');
  assert.equal(store.db.prepare('SELECT count(*) AS n FROM repositories').pluck().get(), 3, 'rows never deleted');

  const back = store.syncConfig([project('home', ['media', 'dns']), project('lab', ['ci'])]);
  assert.deepEqual(back, { added: ['home/dns', 'lab/ci'], removed: [], changed: [] });
  const dns = store.getRepository('home/dns');
  assert.equal(dns?.active, true);
  assert.equal(dns?.lastCommit, 'c1', 'domain state survives deactivation');
  assert.equal(dns?.pinnedCommit, 'bad1');
  assert.equal(dns?.suspended, true);
  assert.equal(getProject(store, 'lab')?.active, true);
});

test('keepProjects leaves the rows of a project with an invalid file exactly as they are', (t) => {
  const store = memStore(t);
  store.syncConfig([project('home', ['media']), project('lab', ['ci', 'docs'])]);
  const labBefore = store.listRepositories({ project: 'lab', includeInactive: true });

  // lab's file is broken now: it is missing from the config, or passed with different content.
  const r1 = store.syncConfig([project('home', ['media'])], { keepProjects: ['lab'] });
  assert.deepEqual(r1, { added: [], removed: [], changed: [] });
  assert.deepEqual(store.listRepositories({ project: 'lab', includeInactive: true }), labBefore);
  assert.equal(getProject(store, 'lab')?.active, true);

  const r2 = store.syncConfig([project('home', ['media']), project('lab', ['other'])], { keepProjects: ['lab'] });
  assert.deepEqual(r2, { added: [], removed: [], changed: [] });
  assert.equal(store.getRepository('lab/other'), undefined);
  assert.deepEqual(store.listRepositories({ project: 'lab', includeInactive: true }), labBefore);

  // Fixed file without docs: now the normal rules apply.
  assert.deepEqual(store.syncConfig([project('home', ['media']), project('lab', ['ci'])]), {
    added: [],
    removed: ['lab/docs'],
    changed: [],
  });
});

test('syncConfig rejects inconsistent input without writing anything', (t) => {
  const store = memStore(t);
  store.syncConfig([project('home', ['media'])]);
  const bad = (input: Parameters<Store['syncConfig']>[0]) =>
    assert.throws(
      () => store.syncConfig(input),
      (e: unknown) => e instanceof StoreError && e.code === 'STORE_INVALID_INPUT' && e.status === 422,
    );
  bad([project('home', ['media']), project('home', ['dns'])]);
  bad([project('home', ['media', 'media'])]);
  bad([{ ...project('home', []), repositories: [repo('other', 'media')] }]);
  bad([{ ...project('home', []), repositories: [repo('home', 'media', { checkInterval: 0 })] }]);
  assert.deepEqual(
    store.listRepositories().map((r) => r.key),
    ['home/media'],
  );
});

test('credentials in a repository URL are masked before they are stored', (t) => {
  const store = memStore(t);
  store.syncConfig([
    {
      ...project('home', []),
      repositories: [repo('home', 'media', { url: 'https://bob:hunter2secret@git.example.test/media.git' })],
    },
  ]);
  const url = store.getRepository('home/media')?.url ?? '';
  assert.equal(url, 'https://***@git.example.test/media.git');
  const raw = store.db.prepare('SELECT url FROM repositories').pluck().get() as string;
  assert.ok(!raw.includes('hunter2secret'));
});

test('updateRepositoryState: undefined leaves a field, null clears it; notifyState round-trips as JSON', (t) => {
  const clock = manualClock();
  const store = memStore(t, clock);
  store.syncConfig([project('home', ['media'])]);
  store.updateRepositoryState('home/media', {
    pinnedCommit: 'bad',
    suspended: false,
    lastCheckedAt: '2025-01-01T00:00:00.000Z',
    lastSeenCommit: 'head1',
    notifyState: { lastFailureAt: '2025-01-01T00:00:00.000Z', count: 3 },
  });
  clock.advance(5);
  store.updateRepositoryState('home/media', { lastSeenCommit: 'head2' });
  let r = store.getRepository('home/media');
  assert.equal(r?.pinnedCommit, 'bad');
  assert.equal(r?.suspended, false);
  assert.equal(r?.lastSeenCommit, 'head2');
  assert.deepEqual(r?.notifyState, { lastFailureAt: '2025-01-01T00:00:00.000Z', count: 3 });
  assert.equal(r?.updatedAt, '2025-01-01T00:00:00.005Z');

  store.updateRepositoryState('home/media', { pinnedCommit: null, suspended: null, notifyState: null });
  r = store.getRepository('home/media');
  assert.equal(r?.pinnedCommit, null);
  assert.equal(r?.suspended, null);
  assert.equal(r?.notifyState, null);
  assert.equal(r?.lastSeenCommit, 'head2');

  assert.throws(
    () => store.updateRepositoryState('home/nope', { suspended: true }),
    (e: unknown) => e instanceof StoreError && e.code === 'STORE_NOT_FOUND' && e.status === 404,
  );
  assert.throws(
    () => store.updateRepositoryState('home/media', { notifyState: { n: 1n } }),
    (e: unknown) => e instanceof StoreError && e.code === 'STORE_INVALID_INPUT',
  );
});

test('suspended and pinned commit persist across a reopen of the database file', (t) => {
  const tmp = tempDb();
  t.after(tmp.cleanup);
  const a = Store.open(tmp.file);
  a.syncConfig([project('home', ['media', 'dns'])]);
  a.updateRepositoryState('home/media', { suspended: true, pinnedCommit: 'deadbeef' });
  a.updateRepositoryState('home/dns', { suspended: false });
  a.close();

  const b = Store.open(tmp.file);
  t.after(() => b.close());
  b.syncConfig([project('home', ['media', 'dns'])]); // boot re-sync must not reset actor state
  assert.equal(b.getRepository('home/media')?.suspended, true);
  assert.equal(b.getRepository('home/media')?.pinnedCommit, 'deadbeef');
  assert.equal(b.getRepository('home/dns')?.suspended, false);
});

test('repositoryIds gives every repository id by key in one read, inactive ones too', (t) => {
  const store = memStore(t);
  store.syncConfig([project('home', ['media', 'dns']), project('lab', ['ci'])]);
  store.syncConfig([project('home', ['media', 'dns'])]);
  const ids = store.repositoryIds();
  assert.deepEqual([...ids.keys()].sort(), ['home/dns', 'home/media', 'lab/ci']);
  for (const [key, id] of ids) assert.equal(store.getRepository(key)?.id, id);
  assert.equal(store.getRepository('lab/ci')?.active, false, 'lab/ci is inactive and still listed');
});
