/** @module Tests for diffRepos. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffRepos } from '../../../src/config/diff.ts';
import type { RepoConfig } from '../../../src/config/schema.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

function repo(key: string, patch: Partial<RepoConfig> = {}): RepoConfig {
  const [project = 'p', name = 'r'] = key.split('/');
  return repoConfig(project, name, patch);
}

const keys = (list: RepoConfig[]) => list.map((r) => r.key);

test('added, removed, changed and unchanged by key', () => {
  const prev = [repo('p/a'), repo('p/b'), repo('p/c')];
  const next = [repo('p/d'), repo('p/c', { branch: 'dev' }), repo('p/a')];
  const d = diffRepos(prev, next);
  assert.deepEqual(keys(d.added), ['p/d']);
  assert.deepEqual(keys(d.removed), ['p/b']);
  assert.deepEqual(keys(d.changed), ['p/c']);
  assert.equal(d.changed[0]?.branch, 'dev', 'changed carries the new version');
  assert.deepEqual(keys(d.unchanged), ['p/a']);
});

test('any field counts as a change, including nested and non-hash fields', () => {
  const prev = [repo('p/a'), repo('p/b'), repo('p/c'), repo('p/d')];
  const next = [
    repo('p/a', { checkInterval: 300 }),
    repo('p/b', { token: 'new' }),
    repo('p/c', { notifications: { success: [], failure: ['generic+https://h'] } }),
    repo('p/d', { healthcheck: { timeout: 30, retries: 0, interval: 1 } }),
  ];
  const d = diffRepos(prev, next);
  assert.deepEqual(keys(d.changed), ['p/a', 'p/b', 'p/c']);
  assert.deepEqual(keys(d.unchanged), ['p/d'], 'equal values in new objects are unchanged');
});

test('empty inputs', () => {
  assert.deepEqual(diffRepos([], []), { added: [], removed: [], changed: [], unchanged: [] });
  assert.deepEqual(keys(diffRepos([], [repo('p/a')]).added), ['p/a']);
  assert.deepEqual(keys(diffRepos([repo('p/a')], []).removed), ['p/a']);
});
