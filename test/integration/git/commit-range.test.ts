/**
 * @module The git-sync task's `range`: the commits between the previously deployed commit and the new head, read from
 * the checkout's objects after the fetch (real git over smart HTTP): count and newest subjects in a full clone, a
 * force-push onto another line of history, an exact count for one new commit in a shallow clone, `count: null` when
 * the shallow history is cut, nothing new for the same commit, the head's subject on a first deployment, and no range
 * without `since`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import gitSync from '../../../src/workers/tasks/git-sync.ts';
import { syncSuite } from '../../helpers/sync-suite.ts';

describe('git-sync commit range', () => {
  const fx = syncSuite('shiparr-commit-range-');
  const { newDir, input } = fx;

  it('full clone: counts the new commits and gives the newest subjects, newest first (at most 5)', async () => {
    const first = await fx.server.createRepo('full', { 'compose.yaml': 'v0' }, { message: 'Initial' });
    const dir = newDir();
    const r0 = await gitSync(input('full', dir, { shallow: false, since: null }));
    assert.ok(r0.ok);
    assert.deepEqual(r0.range, { count: null, subjects: ['Initial'] }, 'first deployment: the head subject alone');
    for (let i = 1; i <= 7; i++)
      await fx.server.commit('full', { 'compose.yaml': `v${i}` }, { message: `Change ${i}\n\nbody` });
    const r = await gitSync(input('full', dir, { shallow: false, since: first }));
    assert.ok(r.ok);
    assert.deepEqual(r.range, { count: 7, subjects: ['Change 7', 'Change 6', 'Change 5', 'Change 4', 'Change 3'] });
    const same = await gitSync(input('full', dir, { shallow: false, since: r.commit }));
    assert.deepEqual(same.ok && same.range, { count: 0, subjects: [] });
    const plain = await gitSync(input('full', dir, { shallow: false }));
    assert.equal(plain.ok && plain.range, undefined, 'no range unless since is given');
  });

  it('a branch moved onto another line (force-push) counts only the commits the old one lacks', async () => {
    const base = await fx.server.createRepo('moved', { 'a.txt': '0' }, { message: 'Base' });
    const dir = newDir();
    const side = await fx.server.commit(
      'moved',
      { 'b.txt': '1' },
      { branch: 'side', parent: base, message: 'Side work' },
    );
    const deployed = await fx.server.commit('moved', { 'a.txt': '1' }, { message: 'Main work' });
    assert.ok((await gitSync(input('moved', dir, { shallow: false }))).ok);
    const onSide = await fx.server.commit('moved', { 'c.txt': '1' }, { parent: side, message: 'On side' });
    const r = await gitSync(input('moved', dir, { shallow: false, since: deployed }));
    assert.ok(r.ok);
    assert.equal(r.commit, onSide);
    assert.deepEqual(r.range, { count: 2, subjects: ['On side', 'Side work'] });
  });

  it('shallow clone: one new commit is counted exactly, two make the count unknown (history cut)', async () => {
    const first = await fx.server.createRepo('shallow', { 'compose.yaml': 'v0' }, { message: 'Initial' });
    const dir = newDir();
    assert.ok((await gitSync(input('shallow', dir, { since: null }))).ok);
    await fx.server.commit('shallow', { 'compose.yaml': 'v1' }, { message: 'Fix login' });
    const one = await gitSync(input('shallow', dir, { since: first }));
    assert.ok(one.ok);
    assert.deepEqual(one.range, { count: 1, subjects: ['Fix login'] }, 'the parent is the old head, already here');
    await fx.server.commit('shallow', { 'compose.yaml': 'v2' }, { message: 'Bump db' });
    await fx.server.commit('shallow', { 'compose.yaml': 'v3' }, { message: 'Add cache' });
    const two = await gitSync(input('shallow', dir, { since: one.commit }));
    assert.ok(two.ok);
    assert.deepEqual(two.range, { count: null, subjects: ['Add cache'] }, 'the commit before the head was not fetched');
  });
});
