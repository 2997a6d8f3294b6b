/** @module Tests of the test git server itself (test/helpers/git-server.ts), with the real git CLI as client. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startGitServer, type GitServer } from '../../helpers/git-server.ts';

const exec = promisify(execFile);
// Async only: a synchronous git call would block the event loop the server runs on.
const git = async (args: string[], cwd?: string) =>
  (
    await exec('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' } })
  ).stdout.trim();

describe('test git server', () => {
  let server: GitServer;
  let tmp: string;
  before(async () => {
    server = await startGitServer();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-gs-test-'));
  });
  after(async () => {
    await server.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('serves a created repository to git clone and counts traffic', async () => {
    const sha = await server.createRepo('one', { 'a.txt': 'A', 'dir/b.txt': 'B' });
    assert.match(sha, /^[0-9a-f]{40}$/);
    assert.equal(server.repoUrl('one'), `${server.baseUrl}/one.git`);
    assert.match(server.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    server.resetCounters();
    const dir = path.join(tmp, 'one');
    await git(['clone', '-q', server.repoUrl('one'), dir]);
    assert.equal(await readFile(path.join(dir, 'dir/b.txt'), 'utf8'), 'B');
    assert.equal(await git(['rev-parse', 'HEAD'], dir), sha);
    assert.ok(server.requestCount >= 2, `requests: ${server.requestCount}`);
    assert.ok(server.bytesOut > 200, `bytesOut: ${server.bytesOut}`);
    assert.ok(server.bytesIn > 0);
  });

  it('commits (with deletions), creates branches, rewrites history and moves heads', async () => {
    const first = await server.createRepo('two', { 'keep.txt': '1', 'gone.txt': 'x' });
    const second = await server.commit('two', { 'keep.txt': '2', 'gone.txt': null }, { message: 'second' });
    assert.equal(server.head('two', 'main'), second);
    const feature = await server.commit('two', { 'f.txt': 'f' }, { branch: 'feature' });
    assert.equal(server.head('two', 'feature'), feature);
    assert.equal(server.head('two', 'main'), second, 'main untouched by a commit on another branch');
    const dir = path.join(tmp, 'two');
    await git(['clone', '-q', '-b', 'feature', server.repoUrl('two'), dir]);
    assert.equal(await git(['rev-parse', 'HEAD~1'], dir), second, 'a new branch starts at the default branch head');
    assert.equal(await git(['ls-files'], dir), 'f.txt\nkeep.txt');

    const orphan = await server.commit('two', { 'new.txt': 'n' }, { parent: null });
    assert.equal(server.head('two', 'main'), orphan);
    await git(['fetch', '-q', 'origin'], dir);
    assert.equal(await git(['rev-list', '--count', 'origin/main'], dir), '1', 'parent:null starts a new history');

    await server.forcePush('two', 'main', first);
    assert.equal(server.head('two', 'main'), first);
    assert.throws(() => server.head('two', 'nope'));
  });

  it('requires Basic auth when configured', async () => {
    const secured = await startGitServer({ auth: { username: 'alice', password: 's3cret' } });
    try {
      await secured.createRepo('priv', { a: 'a' });
      await assert.rejects(git(['ls-remote', secured.repoUrl('priv')]));
      const withCreds = secured.repoUrl('priv').replace('http://', 'http://alice:s3cret@');
      assert.match(await git(['ls-remote', withCreds, 'refs/heads/main']), /^[0-9a-f]{40}\trefs\/heads\/main$/);
      const res = await fetch(`${secured.repoUrl('priv')}/info/refs?service=git-upload-pack`);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
    } finally {
      await secured.close();
    }
  });

  it('answers every request with the injected status, then recovers', async () => {
    await server.createRepo('three', { a: 'a' });
    server.setUnavailable(503);
    const before = server.requestCount;
    const res = await fetch(`${server.repoUrl('three')}/info/refs?service=git-upload-pack`);
    assert.equal(res.status, 503);
    assert.equal(server.requestCount, before + 1);
    server.setUnavailable(null);
    assert.match(await git(['ls-remote', server.repoUrl('three')]), /refs\/heads\/main/);
  });

  it('returns 404 for unknown repositories and rejects unsafe names', async () => {
    const res = await fetch(`${server.baseUrl}/missing.git/info/refs?service=git-upload-pack`);
    assert.equal(res.status, 404);
    await assert.rejects(server.createRepo('../evil', { a: 'a' }), /invalid repository name/);
  });
});
