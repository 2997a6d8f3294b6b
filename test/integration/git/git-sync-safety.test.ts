/**
 * @module Data safety of the git-sync task on real checkouts (git smart HTTP): whatever happens — a checkout conflict,
 * another spelling or a real change of the URL, a directory that is not a checkout, damaged git metadata — files git
 * does not track (data/db.sqlite, an ignored .env) survive, and nothing is emptied.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import git from 'isomorphic-git';
import fs from 'node:fs';
import gitSync from '../../../src/workers/tasks/git-sync.ts';
import { syncSuite } from '../../helpers/sync-suite.ts';

const DB = 'SQLite format 3\u0000 precious rows';
const ENV = 'PASSWORD=local-only\n';

/** Puts the data a running stack keeps inside its checkout: an untracked database and an ignored .env. */
async function addUserData(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await writeFile(path.join(dir, 'data', 'db.sqlite'), DB);
  await writeFile(path.join(dir, '.env'), ENV);
}

async function assertUserData(dir: string): Promise<void> {
  assert.equal(await readFile(path.join(dir, 'data', 'db.sqlite'), 'utf8'), DB);
  assert.equal(await readFile(path.join(dir, '.env'), 'utf8'), ENV);
}

async function headOf(dir: string): Promise<string> {
  return git.resolveRef({ fs, dir, ref: 'HEAD' });
}

describe('git-sync never deletes what git does not track', () => {
  const fx = syncSuite('shiparr-git-safety-');
  const { newDir, input } = fx;
  /** A repository with a compose file and a .gitignore that ignores .env, cloned into a new directory with user data. */
  const checkout = async (name: string) => {
    const first = await fx.server.createRepo(name, { 'compose.yaml': 'v1', '.gitignore': '.env\n' });
    const dir = newDir();
    const r = await gitSync(input(name, dir));
    assert.equal(r.ok && r.commit, first);
    await addUserData(dir);
    assert.equal(await git.isIgnored({ fs, dir, filepath: '.env' }), true);
    return { dir, first };
  };

  it('(a) a directory where the new commit has a file is a conflict naming the path; nothing is deleted', async () => {
    const { dir, first } = await checkout('conflict');
    // Docker created the missing bind source ./config.yml as a directory; then a commit adds the real file.
    await mkdir(path.join(dir, 'config.yml'));
    await writeFile(path.join(dir, 'config.yml', 'left-by-app'), 'x');
    const second = await fx.server.commit('conflict', { 'config.yml': 'real: true', 'compose.yaml': 'v2' });
    const r = await gitSync(input('conflict', dir));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, 'GIT_CHECKOUT_CONFLICT');
    assert.equal(!r.ok && r.transient, false);
    assert.match(!r.ok ? r.message : '', /config\.yml \(a directory where the commit has a file\)/);
    // Refs and files unchanged: the previous commit stays checked out.
    assert.equal(await headOf(dir), first);
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'v1');
    assert.equal(await readFile(path.join(dir, 'config.yml', 'left-by-app'), 'utf8'), 'x');
    await assertUserData(dir);

    // Once the user moved the directory away, the same commit deploys and the data is still there.
    await rm(path.join(dir, 'config.yml'), { recursive: true });
    const again = await gitSync(input('conflict', dir));
    assert.deepEqual(again.ok && { commit: again.commit, cloned: again.cloned }, { commit: second, cloned: false });
    assert.equal(await readFile(path.join(dir, 'config.yml'), 'utf8'), 'real: true');
    await assertUserData(dir);
  });

  it('(a) an untracked or ignored file the commit would overwrite is a conflict; an identical one is adopted', async () => {
    const { dir, first } = await checkout('overwrite');
    // The commit stops ignoring .env and adds one (the server commits with `git add -A`, which skips ignored files).
    await fx.server.commit('overwrite', {
      '.gitignore': '',
      '.env': 'FROM_GIT=1\n',
      'notes.txt': 'git',
      'same.txt': 'same',
    });
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    await writeFile(path.join(dir, 'same.txt'), 'same');
    const r = await gitSync(input('overwrite', dir));
    assert.equal(!r.ok && r.code, 'GIT_CHECKOUT_CONFLICT');
    assert.match(!r.ok ? r.message : '', /\.env \(an untracked file the commit would overwrite\)/);
    assert.match(!r.ok ? r.message : '', /notes\.txt \(an untracked file the commit would overwrite\)/);
    assert.doesNotMatch(!r.ok ? r.message : '', /same\.txt/);
    assert.equal(await headOf(dir), first);
    assert.equal(await readFile(path.join(dir, 'notes.txt'), 'utf8'), 'mine');
    await assertUserData(dir);
  });

  it('(a) a tracked file becoming a directory and back is followed; a tracked directory holding data is a conflict', async () => {
    const { dir } = await checkout('retype');
    await fx.server.commit('retype', { conf: 'flat' });
    assert.equal((await gitSync(input('retype', dir))).ok, true);
    const asDir = await fx.server.commit('retype', { conf: null, 'conf/app.yml': 'nested' });
    const r1 = await gitSync(input('retype', dir));
    assert.equal(r1.ok && r1.commit, asDir);
    assert.equal(await readFile(path.join(dir, 'conf', 'app.yml'), 'utf8'), 'nested');
    const asFile = await fx.server.commit('retype', { 'conf/app.yml': null, conf: 'flat again' });
    const r2 = await gitSync(input('retype', dir));
    assert.equal(r2.ok && r2.commit, asFile);
    assert.equal(await readFile(path.join(dir, 'conf'), 'utf8'), 'flat again');

    await fx.server.commit('retype', { conf: null, 'conf/app.yml': 'nested' });
    assert.equal((await gitSync(input('retype', dir))).ok, true);
    await writeFile(path.join(dir, 'conf', 'state.db'), 'app data');
    await fx.server.commit('retype', { 'conf/app.yml': null, conf: 'flat' });
    const r3 = await gitSync(input('retype', dir));
    assert.equal(!r3.ok && r3.code, 'GIT_CHECKOUT_CONFLICT');
    assert.match(
      !r3.ok ? r3.message : '',
      /conf \(a directory where the commit has a file, holding untracked conf\/state\.db\)/,
    );
    assert.equal(await readFile(path.join(dir, 'conf', 'state.db'), 'utf8'), 'app data');
    assert.equal(await readFile(path.join(dir, 'conf', 'app.yml'), 'utf8'), 'nested');
    await assertUserData(dir);
  });

  it('(b) the same repository spelled differently keeps the checkout (no re-clone) and updates the origin', async () => {
    const { dir } = await checkout('spelling');
    const second = await fx.server.commit('spelling', { 'compose.yaml': 'v2' });
    const other = fx.server.repoUrl('spelling').replace(/\.git$/, '');
    const r = await gitSync(input('spelling', dir, { url: other }));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned }, { commit: second, cloned: false });
    assert.equal(await git.getConfig({ fs, dir, path: 'remote.origin.url' }), other);
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'v2');
    await assertUserData(dir);
  });

  it('(b) a real URL change replaces only .git: old tracked files go, untracked and ignored ones stay', async () => {
    const { dir } = await checkout('moved-from');
    const target = await fx.server.createRepo('moved-to', { 'compose.yaml': 'elsewhere', 'new.txt': 'n' });
    const r = await gitSync(input('moved-to', dir));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned, gitDirReplaced: r.gitDirReplaced }, {
      commit: target,
      cloned: true,
      gitDirReplaced: true,
    });
    assert.equal(await git.getConfig({ fs, dir, path: 'remote.origin.url' }), fx.server.repoUrl('moved-to'));
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'elsewhere');
    await assert.rejects(stat(path.join(dir, '.gitignore')), { code: 'ENOENT' });
    await assertUserData(dir);
    assert.deepEqual((await readdir(dir)).filter((e) => e.startsWith('.git')).sort(), ['.git']);
  });

  it('(c) an existing directory that is not a checkout is refused with the path and the fix, and left intact', async () => {
    await fx.server.createRepo('migrate', { 'compose.yaml': 'from git' });
    const dir = newDir();
    await mkdir(dir);
    await writeFile(path.join(dir, 'compose.yaml'), 'hand-made');
    await addUserData(dir);
    const r = await gitSync(input('migrate', dir));
    assert.equal(!r.ok && r.code, 'GIT_NOT_A_CHECKOUT');
    const message = !r.ok ? r.message : '';
    assert.ok(message.startsWith(`${dir} is not empty and is not a git checkout`), message);
    assert.match(message, /move its contents elsewhere/);
    assert.deepEqual((await readdir(dir)).sort(), ['.env', 'compose.yaml', 'data']);
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'hand-made');
    await assertUserData(dir);
  });

  it('(d) unreadable git metadata after a crash is repaired by replacing .git only', async () => {
    const { dir } = await checkout('crash');
    const second = await fx.server.commit('crash', { 'compose.yaml': 'v2' });
    await writeFile(path.join(dir, '.git', 'HEAD'), '');
    await writeFile(path.join(dir, '.git', 'config'), '\u0000\u0000garbage');
    const r = await gitSync(input('crash', dir));
    assert.deepEqual(r.ok && { commit: r.commit, cloned: r.cloned, gitDirReplaced: r.gitDirReplaced }, {
      commit: second,
      cloned: true,
      gitDirReplaced: true,
    });
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'v2');
    await assertUserData(dir);

    // Index and objects lost as well: tracked files are restored, user data kept.
    await rm(path.join(dir, '.git', 'objects'), { recursive: true });
    await writeFile(path.join(dir, '.git', 'index'), 'not an index');
    await writeFile(path.join(dir, 'compose.yaml'), 'drift');
    const r2 = await gitSync(input('crash', dir));
    assert.equal(r2.ok && r2.commit, second);
    await assertUserData(dir);
    assert.deepEqual((await readdir(dir)).filter((e) => e.startsWith('.git')).sort(), ['.git', '.gitignore']);

    // A crash between the two renames of a .git replacement: no .git, the old one aside, a half-written new one.
    await rename(path.join(dir, '.git'), path.join(dir, '.git.shiparr-old'));
    await mkdir(path.join(dir, '.git.shiparr-new', 'objects'), { recursive: true });
    await writeFile(path.join(dir, 'compose.yaml'), 'drift');
    const r3 = await gitSync(input('crash', dir));
    assert.deepEqual(r3.ok && { commit: r3.commit, cloned: r3.cloned }, { commit: second, cloned: true });
    assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'v2');
    await assertUserData(dir);
    assert.deepEqual((await readdir(dir)).filter((e) => e.startsWith('.git')).sort(), ['.git', '.gitignore']);
  });
});
