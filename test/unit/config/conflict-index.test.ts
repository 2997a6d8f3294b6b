/** @module RepoConflictIndex: the same answers as comparing every pair of checkouts, without comparing every pair. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  RepoConflictIndex,
  findRepoConflicts,
  findRepoConflictsSliced,
  isInside,
  timeSlicer,
} from '../../../src/config/resolve.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

const at = (name: string, localPath: string, composeProject = name) =>
  repoConfig('p', name, { localPath, composeProject });

test('same, nested below, nested above and sibling-with-a-common-prefix checkouts', () => {
  const index = new RepoConflictIndex([at('web', '/srv/deploy/web')]);
  assert.equal(index.overlapping(at('a', '/srv/deploy/web'))?.key, 'p/web', 'the same directory');
  assert.equal(index.overlapping(at('b', '/srv/deploy/web/data'))?.key, 'p/web', 'below an accepted checkout');
  assert.equal(index.overlapping(at('c', '/srv/deploy'))?.key, 'p/web', 'above an accepted checkout');
  assert.equal(index.overlapping(at('d', '/'))?.key, 'p/web', 'the root is above everything');
  assert.equal(index.overlapping(at('e', '/srv/deploy/web2')), undefined, 'a sibling sharing a prefix');
  assert.equal(index.overlapping(at('f', '/srv/other/web')), undefined);
  assert.equal(index.overlapping(at('g', '/srv/deploy/./x/../web/'))?.key, 'p/web', 'spelled differently');
  assert.equal(index.sameCompose(at('web', '/elsewhere'))?.key, 'p/web');
  assert.equal(index.sameCompose(at('other', '/elsewhere')), undefined);
});

/** A deterministic mix of unrelated, nested and prefix-sharing directories, some sharing a compose project. */
function generatedRepos() {
  const dirs: string[] = [];
  for (let i = 0; i < 60; i++) {
    const depth = 1 + (i % 4);
    const parts = Array.from({ length: depth }, (_, d) => `d${(i * 7 + d * 3) % 5}${d % 2 ? 'x' : ''}`);
    dirs.push(path.join('/srv', ...parts));
  }
  return dirs.map((d, i) => at(`r${i}`, d, `c${i % 45}`));
}

test('agrees with the pairwise rule on a generated tree of checkouts', () => {
  const repos = generatedRepos();
  const issues = findRepoConflicts('f.yaml', repos, []);
  const expected: string[] = [];
  repos.forEach((r, i) => {
    const earlier = repos.slice(0, i);
    const compose = earlier.find((o) => o.composeProject === r.composeProject);
    if (compose) expected.push(`${r.name}.compose_project`);
    const overlap = earlier.some((o) => isInside(o.localPath, r.localPath) || isInside(r.localPath, o.localPath));
    if (overlap) expected.push(`${r.name}.local_path`);
  });
  assert.deepEqual(
    issues.map((i) => i.path.replace(/^repositories\./, '')),
    expected,
  );
  assert.ok(expected.some((e) => e.endsWith('.compose_project')) && expected.some((e) => e.endsWith('.local_path')));
  assert.ok(
    expected.length < repos.length * 2,
    'and repositories without conflicts (dirs like /srv/d0 and /srv/d0x differ)',
  );
});

test('the sliced check gives the same issues and yields to the event loop between repositories', async () => {
  const repos = generatedRepos();
  const accepted = new RepoConflictIndex([at('taken', '/srv/d0')]);
  const expected = findRepoConflicts('f.yaml', repos, accepted);
  let pauses = 0;
  const slicer = timeSlicer(0);
  let timerFired = false;
  setImmediate(() => (timerFired = true));
  const sliced = findRepoConflictsSliced('f.yaml', repos, accepted, async () => {
    pauses++;
    await slicer();
  });
  assert.equal(timerFired, false, 'nothing ran yet');
  const issues = await sliced;
  assert.deepEqual(issues, expected);
  assert.ok(
    expected.some((i) => i.message.includes('p/taken')),
    'the accepted index is checked too',
  );
  assert.equal(pauses, repos.length, 'one pause per repository');
  assert.ok(timerFired, 'an immediate queued before the check ran while it was under way');
});
