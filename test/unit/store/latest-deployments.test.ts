/** @module latestDeployments: one statement gives what one listDeployments(limit 1) per repository gave. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../../src/store/index.ts';
import { openStore, project } from './helpers.ts';

const setup = (t: { after: (fn: () => void) => void }) =>
  openStore(t, [project('home', ['media', 'dns', 'wiki', 'idle']), project('lab', ['media'])]);

/** The previous widget path: the newest page entry of each repository, narrowed to the same fields. */
function oldPath(store: Store, projectName: string) {
  const out = new Map<number, unknown>();
  for (const r of store.listRepositories({ project: projectName })) {
    const d = store.listDeployments(r.id, { limit: 1 }).items[0];
    if (d)
      out.set(r.id, {
        id: d.id,
        repositoryId: d.repositoryId,
        status: d.status,
        commit: d.commit,
        startedAt: d.startedAt,
        finishedAt: d.finishedAt,
      });
  }
  return out;
}

test('the newest deployment per repository of the project, exactly as listDeployments gave it', (t) => {
  const { store, clock } = setup(t);
  const run = (key: string, commit: string, status: 'success' | 'failed' | null) => {
    clock.advance(1000);
    const d = store.createDeployment({ repoKey: key, trigger: 'poll', status: 'running', commit });
    clock.advance(500);
    if (status) store.finishDeployment(d.id, status === 'failed' ? { status, error: 'boom' } : { status });
    return d.id;
  };
  run('home/media', 'm1', 'success');
  run('lab/media', 'x1', 'success');
  const mediaLatest = run('home/media', 'm2', 'failed');
  run('home/dns', 'd1', 'success');
  const dnsRunning = run('home/dns', 'd2', null);
  const wiki = run('home/wiki', 'w1', 'success');
  // lab/media's newer deployment must not leak into home.
  const labLatest = run('lab/media', 'x2', 'success');

  const latest = store.latestDeployments('home');
  assert.deepEqual(latest, oldPath(store, 'home'));
  const repoId = (key: string) => store.getRepository(key)!.id;
  assert.deepEqual(
    [...latest.keys()].sort((a, b) => a - b),
    [repoId('home/media'), repoId('home/dns'), repoId('home/wiki')].sort((a, b) => a - b),
    'home/idle was never deployed: no entry',
  );
  assert.equal(latest.get(repoId('home/media'))?.id, mediaLatest);
  assert.equal(latest.get(repoId('home/media'))?.status, 'failed');
  assert.deepEqual(latest.get(repoId('home/dns')), {
    id: dnsRunning,
    repositoryId: repoId('home/dns'),
    status: 'running',
    commit: 'd2',
    startedAt: store.getDeployment(dnsRunning)!.startedAt,
    finishedAt: null,
  });
  assert.equal(latest.get(repoId('home/wiki'))?.id, wiki);
  assert.deepEqual(store.latestDeployments('lab'), oldPath(store, 'lab'));
  assert.equal(store.latestDeployments('lab').get(repoId('lab/media'))?.id, labLatest);
});

test('it follows a deployment from start to finish, and is empty for a project without deployments or unknown', (t) => {
  const { store, clock } = setup(t);
  assert.equal(store.latestDeployments('home').size, 0);
  assert.equal(store.latestDeployments('nope').size, 0);
  const d = store.createDeployment({ repoKey: 'home/wiki', trigger: 'api', status: 'pending' });
  assert.equal(store.latestDeployments('home').get(d.repositoryId)?.status, 'pending');
  store.updateDeployment(d.id, { status: 'running', commit: 'abc1234' });
  assert.deepEqual(store.latestDeployments('home'), oldPath(store, 'home'));
  clock.advance(2000);
  store.finishDeployment(d.id, { status: 'success' });
  const done = store.latestDeployments('home').get(d.repositoryId);
  assert.equal(done?.status, 'success');
  assert.equal(done?.finishedAt, '2025-01-01T00:00:02.000Z');
  assert.deepEqual(store.latestDeployments('home'), oldPath(store, 'home'));
});
