/** @module git-sync task against a real git http-backend server: clone, update, force-push, drift, repair, rollback. */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import gitSync from '../../../src/workers/tasks/git-sync.ts';
import { startGitServer } from '../../helpers/git-server.ts';
import { syncSuite } from '../../helpers/sync-suite.ts';

/** Working-tree files (relative, sorted) outside .git, with their contents. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (p === '.git') continue;
      if (e.isDirectory()) await walk(p);
      else out[p] = await readFile(path.join(dir, p), 'utf8');
    }
  };
  await walk('');
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Every file under `dir` (including .git), as one string, to look for leaked secrets. */
async function allBytes(dir: string): Promise<string> {
  let text = '';
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) text += await readFile(path.join(e.parentPath, e.name), 'latin1');
  }
  return text;
}

describe('git-sync task', () => {
  const fx = syncSuite('shiparr-git-sync-');
  const { newDir, input } = fx;

  it('clones on first use, then updates to a new commit (added, changed and deleted files)', async () => {
    const first = await fx.server.createRepo('basic', {
      'compose.yaml': 'v1',
      'conf/app.env': 'A=1',
      'old.txt': 'old',
    });
    const dir = newDir();
    const r1 = await gitSync(input('basic', dir));
    assert.deepEqual(r1.ok && { commit: r1.commit, cloned: r1.cloned }, { commit: first, cloned: true });
    assert.deepEqual(await tree(dir), { 'compose.yaml': 'v1', 'conf/app.env': 'A=1', 'old.txt': 'old' });

    const second = await fx.server.commit('basic', { 'compose.yaml': 'v2', 'old.txt': null, 'new/file.txt': 'n' });
    const r2 = await gitSync(input('basic', dir));
    assert.deepEqual(r2.ok && { commit: r2.commit, cloned: r2.cloned }, { commit: second, cloned: false });
    assert.deepEqual(await tree(dir), { 'compose.yaml': 'v2', 'conf/app.env': 'A=1', 'new/file.txt': 'n' });
    assert.equal((await readFile(path.join(dir, '.git', 'HEAD'), 'utf8')).trim(), 'ref: refs/heads/main');
  });

  it('follows a force-push to an unrelated history', async () => {
    await fx.server.createRepo('forced', { 'a.txt': 'a1' });
    await fx.server.commit('forced', { 'a.txt': 'a2', 'b.txt': 'b' });
    const dir = newDir();
    assert.equal((await gitSync(input('forced', dir))).ok, true);
    const rewritten = await fx.server.commit('forced', { 'c.txt': 'c' }, { parent: null, message: 'rewrite' });
    const r = await gitSync(input('forced', dir));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned }, { commit: rewritten, cloned: false });
    assert.deepEqual(await tree(dir), { 'c.txt': 'c' });
  });

  it('follows a force-push back to an older commit', async () => {
    const first = await fx.server.createRepo('reset', { 'a.txt': '1' });
    await fx.server.commit('reset', { 'a.txt': '2' });
    const dir = newDir();
    await gitSync(input('reset', dir, { shallow: false }));
    await fx.server.forcePush('reset', 'main', first);
    const r = await gitSync(input('reset', dir, { shallow: false }));
    assert.equal(r.ok && r.commit, first);
    assert.deepEqual(await tree(dir), { 'a.txt': '1' });
  });

  it('resets local drift: modified and deleted tracked files restored, untracked files kept', async () => {
    const sha = await fx.server.createRepo('drift', { 'compose.yaml': 'clean', 'keep/x.txt': 'x', 'gone.txt': 'g' });
    const dir = newDir();
    await gitSync(input('drift', dir));
    await writeFile(path.join(dir, 'compose.yaml'), 'tampered');
    await rm(path.join(dir, 'keep/x.txt'));
    await writeFile(path.join(dir, 'gone.txt'), 'locally edited');
    await mkdir(path.join(dir, 'data'));
    await writeFile(path.join(dir, 'data', 'db.sqlite'), 'user data');
    await writeFile(path.join(dir, '.env'), 'SECRET=decrypted');

    const same = await gitSync(input('drift', dir));
    assert.equal(same.ok && same.commit, sha);
    assert.deepEqual(await tree(dir), {
      '.env': 'SECRET=decrypted',
      'compose.yaml': 'clean',
      'data/db.sqlite': 'user data',
      'gone.txt': 'g',
      'keep/x.txt': 'x',
    });

    // A later commit deletes a file that was edited locally: it goes away too.
    await writeFile(path.join(dir, 'gone.txt'), 'edited again');
    const next = await fx.server.commit('drift', { 'gone.txt': null });
    const r = await gitSync(input('drift', dir));
    assert.equal(r.ok && r.commit, next);
    assert.deepEqual(await tree(dir), {
      '.env': 'SECRET=decrypted',
      'compose.yaml': 'clean',
      'data/db.sqlite': 'user data',
      'keep/x.txt': 'x',
    });
  });

  it('repairs a broken .git/HEAD, lost objects or a garbage index by replacing .git only', async () => {
    const sha = await fx.server.createRepo('corrupt', { 'a.txt': 'a' });
    const dir = newDir();
    assert.equal((await gitSync(input('corrupt', dir))).ok, true);
    await writeFile(path.join(dir, 'untracked.txt'), 'keep');

    await writeFile(path.join(dir, '.git', 'HEAD'), 'garbage\n');
    const r2 = await gitSync(input('corrupt', dir));
    assert.deepEqual(r2.ok && { commit: r2.commit, cloned: r2.cloned }, { commit: sha, cloned: true });

    // Objects gone but refs intact: the fetch downloads them again (or .git is replaced); either way the tree is right.
    await rm(path.join(dir, '.git', 'objects'), { recursive: true });
    await mkdir(path.join(dir, '.git', 'objects'));
    await writeFile(path.join(dir, 'a.txt'), 'drift');
    const r3 = await gitSync(input('corrupt', dir));
    assert.equal(r3.ok && r3.commit, sha);
    assert.deepEqual(await tree(dir), { 'a.txt': 'a', 'untracked.txt': 'keep' });

    // A garbage index cannot be read: .git is replaced; the files of the old HEAD commit count as tracked.
    await writeFile(path.join(dir, '.git', 'index'), 'this is not an index');
    await writeFile(path.join(dir, 'a.txt'), 'drift');
    const r3b = await gitSync(input('corrupt', dir));
    assert.deepEqual(r3b.ok && { commit: r3b.commit, cloned: r3b.cloned }, { commit: sha, cloned: true });
    assert.deepEqual(await tree(dir), { 'a.txt': 'a', 'untracked.txt': 'keep' });
  });

  it('refuses a non-empty directory that is not a checkout, or a file, and leaves it intact', async () => {
    await fx.server.createRepo('foreign', { 'a.txt': 'a' });
    const random = newDir();
    await mkdir(path.join(random, 'junk'), { recursive: true });
    await writeFile(path.join(random, 'junk', 'z.bin'), 'zzz');
    const r1 = await gitSync(input('foreign', random));
    assert.equal(r1.ok, false);
    assert.equal(!r1.ok && r1.code, 'GIT_NOT_A_CHECKOUT');
    assert.ok(
      !r1.ok && r1.message.startsWith(`${random} is not empty and is not a git checkout`),
      String(!r1.ok && r1.message),
    );
    assert.deepEqual(await tree(random), { 'junk/z.bin': 'zzz' });

    const file = newDir();
    await writeFile(file, 'not a directory');
    const r4 = await gitSync(input('foreign', file));
    assert.equal(!r4.ok && r4.code, 'GIT_NOT_A_CHECKOUT');
    assert.equal(await readFile(file, 'utf8'), 'not a directory');
  });

  it('replaces .git when the configured URL changes: files of the old repository go, untracked ones stay', async () => {
    await fx.server.createRepo('url-a', { 'a.txt': 'from a' });
    const b = await fx.server.createRepo('url-b', { 'b.txt': 'from b' });
    const dir = newDir();
    await gitSync(input('url-a', dir));
    await writeFile(path.join(dir, 'local.txt'), 'mine');
    const r = await gitSync(input('url-b', dir));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned }, { commit: b, cloned: true });
    assert.deepEqual(await tree(dir), { 'b.txt': 'from b', 'local.txt': 'mine' });
  });

  it('rolls back to an older commit in a shallow clone by fetching more history', async () => {
    const shas = [await fx.server.createRepo('history', { 'version.txt': '0' })];
    for (let i = 1; i <= 40; i++) shas.push(await fx.server.commit('history', { 'version.txt': String(i) }));
    const dir = newDir();
    const head = await gitSync(input('history', dir));
    assert.equal(head.ok && head.commit, shas[40]);
    const shallowBefore = await readFile(path.join(dir, '.git', 'shallow'), 'utf8');
    assert.equal(shallowBefore.trim(), shas[40], 'depth-1 clone');

    const near = await gitSync(input('history', dir, { commit: shas[35] }));
    assert.deepEqual(near.ok && { commit: near.commit, cloned: near.cloned }, { commit: shas[35], cloned: false });
    assert.deepEqual(await tree(dir), { 'version.txt': '35' });

    // Far back (beyond the first deepening steps), by abbreviated sha.
    const far = await gitSync(input('history', dir, { commit: shas[2]!.slice(0, 10) }));
    assert.equal(far.ok && far.commit, shas[2]);
    assert.deepEqual(await tree(dir), { 'version.txt': '2' });

    // And forward again to the head.
    const again = await gitSync(input('history', dir));
    assert.equal(again.ok && again.commit, shas[40]);
    assert.deepEqual(await tree(dir), { 'version.txt': '40' });
  });

  it('checks out an older commit on a fresh shallow clone', async () => {
    const shas = [await fx.server.createRepo('fresh-old', { v: '0' })];
    for (let i = 1; i <= 5; i++) shas.push(await fx.server.commit('fresh-old', { v: String(i) }));
    const dir = newDir();
    const r = await gitSync(input('fresh-old', dir, { commit: shas[1] }));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned }, { commit: shas[1], cloned: true });
    assert.deepEqual(await tree(dir), { v: '1' });
  });

  it('reports a commit that is not on the branch as GIT_COMMIT_NOT_FOUND', async () => {
    await fx.server.createRepo('nocommit', { a: 'a' });
    const dir = newDir();
    const r = await gitSync(input('nocommit', dir, { commit: 'deadbeef'.repeat(5) }));
    assert.equal(!r.ok && r.code, 'GIT_COMMIT_NOT_FOUND');
    assert.equal(!r.ok && r.transient, false);
  });

  it('reports a missing branch as GIT_BRANCH_NOT_FOUND, on clone and on fetch', async () => {
    await fx.server.createRepo('branches', { a: 'a' });
    const r1 = await gitSync(input('branches', newDir(), { branch: 'nope' }));
    assert.equal(!r1.ok && r1.code, 'GIT_BRANCH_NOT_FOUND');
    await fx.server.commit('branches', { b: 'b' }, { branch: 'temp' });
    const dir = newDir();
    assert.equal((await gitSync(input('branches', dir, { branch: 'temp' }))).ok, true);
    const bare = path.join(fx.server.root, 'branches.git');
    await rm(path.join(bare, 'refs', 'heads', 'temp'), { force: true });
    await fx.server.forcePush('branches', 'main', fx.server.head('branches', 'main')); // keeps packed refs consistent
    const r2 = await gitSync(input('branches', dir, { branch: 'temp' }));
    assert.equal(!r2.ok && r2.code, 'GIT_BRANCH_NOT_FOUND');
  });

  it('never writes the token to .git/config or anywhere on disk, and fails auth cleanly', async () => {
    const token = 'ghp_TestToken0123456789abcdefXYZ';
    const secured = await startGitServer({ auth: { username: 'x-access-token', password: token } });
    try {
      const sha = await secured.createRepo('private', { 'compose.yaml': 'x' });
      const dir = newDir();
      const ok = await gitSync({
        url: secured.repoUrl('private'),
        branch: 'main',
        dir,
        shallow: true,
        token,
        timeoutMs: 20_000,
      });
      assert.equal(ok.ok && ok.commit, sha);
      const config = await readFile(path.join(dir, '.git', 'config'), 'utf8');
      assert.match(config, new RegExp(`url = ${secured.repoUrl('private').replace(/\./g, '\\.')}`));
      assert.ok(!config.includes(token));
      const b64 = Buffer.from(`x-access-token:${token}`).toString('base64');
      const disk = await allBytes(dir);
      assert.ok(!disk.includes(token) && !disk.includes(b64), 'token found on disk');

      // URL credentials are stripped too.
      const dir2 = newDir();
      const withCreds = secured.repoUrl('private').replace('http://', `http://x-access-token:${token}@`);
      const ok2 = await gitSync({ url: withCreds, branch: 'main', dir: dir2, shallow: true, timeoutMs: 20_000 });
      assert.equal(ok2.ok, true);
      assert.ok(!(await allBytes(dir2)).includes(token));

      const bad = await gitSync({
        url: secured.repoUrl('private'),
        branch: 'main',
        dir: newDir(),
        shallow: true,
        token: 'nope-nope-nope',
        timeoutMs: 20_000,
      });
      assert.equal(!bad.ok && bad.code, 'GIT_AUTH_FAILED');
      assert.ok(!JSON.stringify(bad).includes('nope-nope-nope'));
    } finally {
      await secured.close();
    }
  });

  it('maps a 503 to transient GIT_UNREACHABLE and keeps the existing checkout', async () => {
    const sha = await fx.server.createRepo('flaky', { a: 'a' });
    const dir = newDir();
    await gitSync(input('flaky', dir));
    fx.server.setUnavailable(503);
    try {
      const r = await gitSync(input('flaky', dir));
      assert.equal(!r.ok && r.code, 'GIT_UNREACHABLE');
      assert.equal(!r.ok && r.transient, true);
    } finally {
      fx.server.setUnavailable(null);
    }
    assert.deepEqual(await tree(dir), { a: 'a' });
    const r = await gitSync(input('flaky', dir));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned }, { commit: sha, cloned: false });
  });

  it('gives up after timeoutMs with transient GIT_TIMEOUT', async () => {
    await fx.server.createRepo('slow', { a: 'a' });
    fx.server.setLatency(3_000);
    try {
      const r = await gitSync(input('slow', newDir(), { timeoutMs: 200 }));
      assert.equal(!r.ok && r.code, 'GIT_TIMEOUT');
      assert.equal(!r.ok && r.transient, true);
    } finally {
      fx.server.setLatency(0);
    }
  });

  it('refuses an empty, relative or root directory without deleting anything', async () => {
    for (const dir of ['', '/', 'relative/dir', '/..']) {
      const r = await gitSync(input('basic', dir));
      assert.equal(!r.ok && r.code, 'GIT_INVALID_INPUT', `dir ${JSON.stringify(dir)}`);
    }
  });
});
