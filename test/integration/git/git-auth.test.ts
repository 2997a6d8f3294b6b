/** @module Pure parts of the git layer: URL/credential handling, input validation and error mapping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remoteTarget, tokenUsername } from '../../../src/git/auth.ts';
import { GitError, toGitError } from '../../../src/git/errors.ts';
import { normalizeBranch, normalizeCommit } from '../../../src/git/refs.ts';
import { assertSafeDir } from '../../../src/git/sync.ts';

const decodeBasic = (h: string | undefined) => Buffer.from((h ?? '').replace(/^Basic /, ''), 'base64').toString();

describe('remoteTarget', () => {
  it('puts a token in a Basic header with the host-specific username, never in the URL', () => {
    const gh = remoteTarget('https://github.com/user/repo.git', 'ghp_abc');
    assert.equal(gh.url, 'https://github.com/user/repo.git');
    assert.equal(decodeBasic(gh.headers.Authorization), 'x-access-token:ghp_abc');
    assert.deepEqual(gh.secrets, ['ghp_abc']);
    const gl = remoteTarget('https://gitlab.com/group/repo.git', 'glpat-xyz');
    assert.equal(decodeBasic(gl.headers.Authorization), 'oauth2:glpat-xyz');
    assert.equal(tokenUsername('gitlab.example.org'), 'oauth2');
    assert.equal(tokenUsername('git.example.org'), 'x-access-token');
  });

  it('moves URL credentials into the header; an explicit token wins', () => {
    const t = remoteTarget('https://bob:p%40ss@git.example.org/r.git');
    assert.equal(t.url, 'https://git.example.org/r.git');
    assert.equal(decodeBasic(t.headers.Authorization), 'bob:p@ss');
    assert.deepEqual(t.secrets, ['p@ss']);
    const tokenOnly = remoteTarget('https://ghp_secretvalue@github.com/u/r.git');
    assert.equal(tokenOnly.url, 'https://github.com/u/r.git');
    assert.deepEqual(tokenOnly.secrets, ['ghp_secretvalue']);
    const both = remoteTarget('https://bob:old@github.com/u/r.git', 'new-token');
    assert.equal(decodeBasic(both.headers.Authorization), 'x-access-token:new-token');
    assert.ok(!both.url.includes('old'));
  });

  it('adds https:// to scheme-less URLs and rejects non-HTTP remotes', () => {
    assert.equal(remoteTarget('github.com/user/repo.git').url, 'https://github.com/user/repo.git');
    assert.deepEqual(remoteTarget('http://127.0.0.1:1/x.git').headers, {});
    assert.throws(
      () => remoteTarget('ssh://git@github.com/u/r.git'),
      (e: GitError) => e.code === 'GIT_INVALID_INPUT',
    );
    assert.throws(
      () => remoteTarget('git@github.com:u/r.git'),
      (e: GitError) => e.code === 'GIT_INVALID_INPUT',
    );
  });
});

describe('input validation', () => {
  it('normalises branches and refuses unsafe names', () => {
    assert.equal(normalizeBranch('refs/heads/release/1.x'), 'release/1.x');
    for (const bad of ['', '-x', 'a..b', 'a b', 'a:b', 'x.lock', 'a//b', '../etc']) {
      assert.throws(
        () => normalizeBranch(bad),
        (e: GitError) => e.code === 'GIT_INVALID_INPUT',
        bad,
      );
    }
  });
  it('accepts full and abbreviated commit ids only', () => {
    assert.equal(normalizeCommit('ABCDEF1'), 'abcdef1');
    assert.throws(() => normalizeCommit('xyz'), GitError);
    assert.throws(() => normalizeCommit('a'.repeat(41)), GitError);
  });
  it('never accepts a root, relative or empty checkout directory', () => {
    for (const bad of ['', '  ', '/', '/..', '/tmp/..', 'rel', './x']) {
      assert.throws(
        () => assertSafeDir(bad),
        (e: GitError) => e.code === 'GIT_INVALID_INPUT',
        JSON.stringify(bad),
      );
    }
    assert.equal(assertSafeDir('/srv/app/../deploy'), '/srv/deploy');
  });
});

describe('toGitError', () => {
  const http = (statusCode: number) =>
    Object.assign(new Error(`HTTP Error: ${statusCode}`), { code: 'HttpError', data: { statusCode } });
  it('maps HTTP statuses, network and local errors to stable codes', () => {
    const cases: [unknown, string, boolean][] = [
      [http(401), 'GIT_AUTH_FAILED', false],
      [http(403), 'GIT_AUTH_FAILED', false],
      [http(404), 'GIT_REPO_NOT_FOUND', false],
      [http(429), 'GIT_UNREACHABLE', true],
      [http(502), 'GIT_UNREACHABLE', true],
      [http(400), 'GIT_REMOTE_ERROR', false],
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'GIT_UNREACHABLE', true],
      [Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }), 'GIT_UNREACHABLE', true],
      [
        Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
        'GIT_TLS_FAILED',
        false,
      ],
      [Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'GIT_LOCAL_IO', false],
      [new TypeError('boom'), 'GIT_SYNC_FAILED', false],
    ];
    for (const [err, code, transient] of cases) {
      const e = toGitError(err, 'GIT_SYNC_FAILED');
      assert.deepEqual({ code: e.code, transient: e.transient }, { code, transient }, String(err));
    }
  });
  it('masks secrets and URL credentials in messages', () => {
    const e = toGitError(
      new Error('failed for https://u:hunter22@host/x with my-token-value\nsecond line'),
      'GIT_CHECK_FAILED',
      ['my-token-value'],
    );
    assert.ok(!e.message.includes('hunter22') && !e.message.includes('my-token-value'));
    assert.ok(!e.message.includes('\n'));
  });
});
