/** @module git-check task against a real git http-backend server: heads, new commits, missing branch, auth, faults. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import gitCheck from '../../../src/workers/tasks/git-check.ts';
import { startGitServer, type GitServer } from '../../helpers/git-server.ts';

describe('git-check task', () => {
  let server: GitServer;
  let secured: GitServer;
  before(async () => {
    server = await startGitServer();
    secured = await startGitServer({ auth: { username: 'x-access-token', password: 'tok-12345-secret' } });
    await server.createRepo('app', { 'compose.yaml': 'services: {}\n' });
    await secured.createRepo('app', { 'compose.yaml': 'services: {}\n' });
  });
  after(async () => {
    await server.close();
    await secured.close();
  });

  it('returns the pushed head of the branch, then detects a new commit', async () => {
    const r1 = await gitCheck({ url: server.repoUrl('app'), branch: 'main', timeoutMs: 10_000 });
    assert.equal(r1.ok, true);
    assert.equal(r1.ok && r1.commit, server.head('app', 'main'));
    assert.ok(r1.durationMs >= 0);
    const next = await server.commit('app', { 'compose.yaml': 'services: { a: {} }\n' });
    const r2 = await gitCheck({ url: server.repoUrl('app'), branch: 'main', timeoutMs: 10_000 });
    assert.deepEqual(r2.ok && r2.commit, next);
  });

  it('matches the exact branch, not a branch sharing its prefix', async () => {
    const mainOld = await server.commit('app', { x: '1' }, { branch: 'main-old' });
    const r = await gitCheck({ url: server.repoUrl('app'), branch: 'refs/heads/main', timeoutMs: 10_000 });
    assert.equal(r.ok, true);
    assert.notEqual(r.ok && r.commit, mainOld);
    assert.equal(r.ok && r.commit, server.head('app', 'main'));
  });

  it('reports a missing branch as GIT_BRANCH_NOT_FOUND (not transient)', async () => {
    const r = await gitCheck({ url: server.repoUrl('app'), branch: 'nope', timeoutMs: 10_000 });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, 'GIT_BRANCH_NOT_FOUND');
    assert.equal(!r.ok && r.transient, false);
  });

  it('reports a missing repository as GIT_REPO_NOT_FOUND', async () => {
    const r = await gitCheck({ url: server.repoUrl('ghost'), branch: 'main', timeoutMs: 10_000 });
    assert.equal(!r.ok && r.code, 'GIT_REPO_NOT_FOUND');
  });

  it('sends the token as Basic auth; a wrong or missing token is GIT_AUTH_FAILED and never echoed', async () => {
    const ok = await gitCheck({
      url: secured.repoUrl('app'),
      branch: 'main',
      token: 'tok-12345-secret',
      timeoutMs: 10_000,
    });
    assert.equal(ok.ok && ok.commit, secured.head('app', 'main'));
    const bad = await gitCheck({
      url: secured.repoUrl('app'),
      branch: 'main',
      token: 'wrong-token-value',
      timeoutMs: 10_000,
    });
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.code, 'GIT_AUTH_FAILED');
    assert.equal(!bad.ok && bad.transient, false);
    assert.ok(!JSON.stringify(bad).includes('wrong-token-value'));
    const none = await gitCheck({ url: secured.repoUrl('app'), branch: 'main', timeoutMs: 10_000 });
    assert.equal(!none.ok && none.code, 'GIT_AUTH_FAILED');
  });

  it('moves credentials found in the URL into the header and keeps them out of messages', async () => {
    const url = secured.repoUrl('app').replace('http://', 'http://x-access-token:tok-12345-secret@');
    const ok = await gitCheck({ url, branch: 'main', timeoutMs: 10_000 });
    assert.equal(ok.ok && ok.commit, secured.head('app', 'main'));
    const badUrl = secured.repoUrl('ghost').replace('http://', 'http://x-access-token:tok-12345-secret@');
    const bad = await gitCheck({ url: badUrl, branch: 'main', timeoutMs: 10_000 });
    assert.equal(bad.ok, false);
    assert.ok(!JSON.stringify(bad).includes('tok-12345-secret'));
  });

  it('maps HTTP 503 and a closed port to transient GIT_UNREACHABLE', async () => {
    server.setUnavailable(503);
    try {
      const r = await gitCheck({ url: server.repoUrl('app'), branch: 'main', timeoutMs: 10_000 });
      assert.equal(!r.ok && r.code, 'GIT_UNREACHABLE');
      assert.equal(!r.ok && r.transient, true);
    } finally {
      server.setUnavailable(null);
    }
    const closed = await startGitServer();
    const url = closed.repoUrl('app');
    await closed.close();
    const r = await gitCheck({ url, branch: 'main', timeoutMs: 10_000 });
    assert.equal(!r.ok && r.code, 'GIT_UNREACHABLE');
    assert.equal(!r.ok && r.transient, true);
  });

  it('gives up after timeoutMs with transient GIT_TIMEOUT', async () => {
    server.setLatency(3_000);
    try {
      const r = await gitCheck({ url: server.repoUrl('app'), branch: 'main', timeoutMs: 200 });
      assert.equal(!r.ok && r.code, 'GIT_TIMEOUT');
      assert.equal(!r.ok && r.transient, true);
    } finally {
      server.setLatency(0);
    }
  });

  it('rejects invalid input without touching the network', async () => {
    const before = server.requestCount;
    const r1 = await gitCheck({ url: 'git@github.com:user/repo.git', branch: 'main', timeoutMs: 1_000 });
    assert.equal(!r1.ok && r1.code, 'GIT_INVALID_INPUT');
    const r2 = await gitCheck({ url: server.repoUrl('app'), branch: 'bad..name', timeoutMs: 1_000 });
    assert.equal(!r2.ok && r2.code, 'GIT_INVALID_INPUT');
    assert.equal(server.requestCount, before);
  });
});
