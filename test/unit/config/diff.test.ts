/** @module Tests for diffRepos. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffRepos } from '../../../src/config/diff.ts';
import type { RepoConfig } from '../../../src/config/schema.ts';

function repo(key: string, patch: Partial<RepoConfig> = {}): RepoConfig {
  const [project = 'p', name = 'r'] = key.split('/');
  return {
    key,
    project,
    name,
    url: `https://x.org/${name}.git`,
    branch: 'main',
    localPath: `/data/${key}`,
    path: '.',
    checkInterval: 300,
    composeFiles: [],
    composeProject: `${project}-${name}`,
    pull: 'missing',
    build: false,
    removeOrphans: true,
    healthcheck: { timeout: 120, retries: 5, interval: 5 },
    rollback: true,
    decrypt: [],
    keepDecrypted: false,
    enabled: true,
    suspended: false,
    shallow: true,
    timeouts: { git: 120, apply: 600, decrypt: 60, notify: 10 },
    notifications: { success: [], failure: [] },
    globalNotifications: { success: [], failure: [] },
    notifyRepeatInterval: 3600,
    configHash: '0000000000000000',
    ...patch,
  };
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
    repo('p/a', { checkInterval: 60 }),
    repo('p/b', { token: 'new' }),
    repo('p/c', { notifications: { success: [], failure: ['generic+https://h'] } }),
    repo('p/d', { healthcheck: { timeout: 120, retries: 5, interval: 5 } }),
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
