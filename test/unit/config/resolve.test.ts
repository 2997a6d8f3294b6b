/** @module Tests for the pure resolution helpers (URL normalisation, token lookup, hashing, path checks). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  computeConfigHash,
  defaultComposeProject,
  formatKeyPath,
  isInside,
  normaliseGitUrl,
  normaliseRelative,
  stableStringify,
  tokenForHost,
} from '../../../src/config/resolve.ts';

test('formatKeyPath uses dots, [index] and ["odd.key"]', () => {
  assert.equal(formatKeyPath([]), '');
  assert.equal(formatKeyPath(['repositories', 'media-stack', 'url']), 'repositories.media-stack.url');
  assert.equal(formatKeyPath(['repositories', 'a', 'decrypt', 0, 'file']), 'repositories.a.decrypt[0].file');
  assert.equal(formatKeyPath(['repositories', 'my.repo', 'url']), 'repositories["my.repo"].url');
});

test('normaliseGitUrl adds https, lowercases the host and splits out credentials', () => {
  assert.deepEqual(normaliseGitUrl('github.com/u/r.git'), {
    ok: true,
    url: 'https://github.com/u/r.git',
    host: 'github.com',
    hostname: 'github.com',
    password: undefined,
  });
  const withCreds = normaliseGitUrl('HTTPS://user:p%2Fw@Git.Example.com:8443/a/b.git');
  assert.ok(withCreds.ok);
  assert.equal(withCreds.url, 'https://git.example.com:8443/a/b.git');
  assert.equal(withCreds.host, 'git.example.com:8443');
  assert.equal(withCreds.password, 'p/w');
  const userOnly = normaliseGitUrl('https://someone@github.com/u/r');
  assert.ok(userOnly.ok);
  assert.equal(userOnly.url, 'https://github.com/u/r');
  assert.equal(userOnly.password, undefined);
  assert.equal(normaliseGitUrl('git://github.com/u/r').ok, false);
  assert.equal(normaliseGitUrl('file:///srv/repo.git').ok, false);
});

test('tokenForHost prefers exact host keys (case-insensitive), then aliases', () => {
  const tokens = { GitHub: 'alias', 'github.com': 'exact', gitea: 'gt' };
  assert.equal(tokenForHost(tokens, 'github.com', 'github.com'), 'exact');
  assert.equal(tokenForHost({ GitHub: 'alias' }, 'github.com', 'github.com'), 'alias');
  assert.equal(tokenForHost(tokens, 'codeberg.org', 'codeberg.org'), 'gt');
  assert.equal(
    tokenForHost(tokens, 'gitea.local', 'gitea.local'),
    undefined,
    'the gitea alias is for codeberg.org only',
  );
});

test('defaultComposeProject', () => {
  assert.equal(defaultComposeProject('HomeLab', 'Media.Stack'), 'homelab-media-stack');
  assert.equal(defaultComposeProject('a_b', 'c-d'), 'a_b-c-d');
});

test('stableStringify sorts keys at every level and drops undefined', () => {
  assert.equal(
    stableStringify({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: null } }),
    '{"a":{"c":null,"d":[2,{"z":1}]},"b":1}',
  );
  assert.equal(stableStringify({ a: 1, b: 2 }), stableStringify({ b: 2, a: 1 }));
});

test('computeConfigHash only depends on deploy-relevant fields', () => {
  const base = {
    key: 'p/r',
    project: 'p',
    name: 'r',
    url: 'https://x.org/a.git',
    branch: 'main',
    localPath: '/d',
    path: '.',
    checkInterval: 300,
    composeFiles: [],
    composeProject: 'p-r',
    pull: 'missing' as const,
    build: false,
    removeOrphans: true,
    healthcheck: { timeout: 1, retries: 1, interval: 1 },
    rollback: true,
    decrypt: [],
    keepDecrypted: false,
    enabled: true,
    suspended: false,
    shallow: true,
    timeouts: { git: 1, apply: 1, decrypt: 1, notify: 1 },
    notifications: { success: [], failure: [] },
    globalNotifications: { success: [], failure: [] },
    notifyRepeatInterval: 1,
  };
  const h = computeConfigHash(base);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(computeConfigHash({ ...base, checkInterval: 10, token: 't', suspended: true }), h);
  assert.notEqual(computeConfigHash({ ...base, dockerHost: 'tcp://1.2.3.4:2375' }), h);
  assert.notEqual(computeConfigHash({ ...base, decrypt: [{ file: '.env.enc' }] }), h);
  assert.notEqual(computeConfigHash({ ...base, composeFiles: ['a.yaml'] }), h);
});

test('normaliseRelative and isInside', () => {
  assert.deepEqual(normaliseRelative('a/./b/../c/', 'x'), { ok: true, value: 'a/c' });
  assert.deepEqual(normaliseRelative('./', 'x'), { ok: true, value: '.' });
  assert.equal(normaliseRelative('a/../../b', 'x').ok, false);
  assert.equal(normaliseRelative('C:\\data', 'x').ok, false);
  assert.equal(normaliseRelative('..\\up', 'x').ok, false);
  assert.equal(isInside('/a/b', '/a/b'), true);
  assert.equal(isInside('/a/b', '/a/b/c'), true);
  assert.equal(isInside('/a/b', '/a/bc'), false);
  assert.equal(isInside('/a/b', '/a'), false);
});
