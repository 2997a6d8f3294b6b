/**
 * @module Incremental syncs write only what differs: files the new commit leaves alone keep their bytes, inode and
 * mtime, while changed, added, deleted, locally modified, locally deleted and re-moded tracked files are brought to
 * the commit, and untracked files stay. Against a real git http-backend server.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import gitSync from '../../../src/workers/tasks/git-sync.ts';
import { startGitServer, syncFixture, type GitServer } from '../../helpers/git-server.ts';

/** A date no checkout writes: a file that still has it was not rewritten. */
const OLD = new Date('2001-02-03T04:05:06Z');

describe('git-sync: incremental checkout touches only changed paths', () => {
  let server: GitServer;
  let tmp: string;
  const { newDir, input } = syncFixture(
    () => server,
    () => tmp,
  );

  before(async () => {
    server = await startGitServer();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-git-incr-'));
  });
  after(async () => {
    await server.close();
    await rm(tmp, { recursive: true, force: true });
  });

  for (const shallow of [true, false]) {
    it(`${shallow ? 'shallow' : 'full'}: unchanged files are not rewritten; every difference is applied`, async () => {
      const name = `incr-${shallow ? 's' : 'f'}`;
      const files: Record<string, string> = {};
      for (let d = 0; d < 4; d++) for (let f = 0; f < 10; f++) files[`d${d}/f${f}.txt`] = `file ${d}/${f}\n`;
      await server.createRepo(name, { ...files, 'compose.yaml': 'v1\n', 'gone.txt': 'bye\n', 'sub/x.txt': 'x\n' });
      const dir = newDir();
      const r1 = await gitSync(input(name, dir, { shallow }));
      assert.equal(r1.ok && r1.cloned, true);

      // Age every file, so a rewrite shows in its mtime; then local drift and an untracked file.
      for (const f of [...Object.keys(files), 'compose.yaml', 'gone.txt', 'sub/x.txt']) {
        await utimes(path.join(dir, f), OLD, OLD);
      }
      const inodes = new Map<string, number>();
      for (const f of Object.keys(files)) inodes.set(f, (await stat(path.join(dir, f))).ino);
      await writeFile(path.join(dir, 'd1/f1.txt'), 'local edit\n'); // modified tracked file → restored
      await unlink(path.join(dir, 'd2/f2.txt')); // deleted tracked file → restored
      await chmod(path.join(dir, 'd3/f3.txt'), 0o755); // mode drift → restored
      await writeFile(path.join(dir, 'd0/untracked.log'), 'mine\n'); // untracked → kept

      const head = await server.commit(name, {
        'compose.yaml': 'v2\n',
        'gone.txt': null,
        'new/added.txt': 'added\n',
        'sub/x.txt': null,
        'sub/y.txt': 'y\n',
      });
      const r2 = await gitSync(input(name, dir, { shallow }));
      assert.deepEqual(r2.ok && { commit: r2.commit, cloned: r2.cloned }, { commit: head, cloned: false });

      // The commit's changes.
      assert.equal(await readFile(path.join(dir, 'compose.yaml'), 'utf8'), 'v2\n');
      assert.equal(await readFile(path.join(dir, 'new/added.txt'), 'utf8'), 'added\n');
      assert.equal(await readFile(path.join(dir, 'sub/y.txt'), 'utf8'), 'y\n');
      await assert.rejects(stat(path.join(dir, 'gone.txt')), { code: 'ENOENT' });
      await assert.rejects(stat(path.join(dir, 'sub/x.txt')), { code: 'ENOENT' });
      // Local drift undone, untracked file kept.
      assert.equal(await readFile(path.join(dir, 'd1/f1.txt'), 'utf8'), 'file 1/1\n');
      assert.equal(await readFile(path.join(dir, 'd2/f2.txt'), 'utf8'), 'file 2/2\n');
      assert.equal((await stat(path.join(dir, 'd3/f3.txt'))).mode & 0o777 & 0o111, 0, 'executable bit removed');
      assert.equal(await readFile(path.join(dir, 'd0/untracked.log'), 'utf8'), 'mine\n');

      // Everything else untouched: same inode, old mtime.
      const drifted = new Set(['d1/f1.txt', 'd2/f2.txt', 'd3/f3.txt']);
      const rewritten: string[] = [];
      for (const f of Object.keys(files)) {
        if (drifted.has(f)) continue;
        const st = await stat(path.join(dir, f));
        if (st.mtimeMs !== OLD.getTime() || st.ino !== inodes.get(f)) rewritten.push(f);
        assert.equal(await readFile(path.join(dir, f), 'utf8'), files[f]);
      }
      assert.deepEqual(rewritten, [], 'unchanged files were rewritten');

      // A sync with nothing new writes nothing at all.
      const again = await gitSync(input(name, dir, { shallow }));
      assert.equal(again.ok && again.commit, head);
      assert.equal((await stat(path.join(dir, 'compose.yaml'))).mtimeMs > OLD.getTime(), true);
      await utimes(path.join(dir, 'compose.yaml'), OLD, OLD);
      assert.equal((await gitSync(input(name, dir, { shallow }))).ok, true);
      assert.equal((await stat(path.join(dir, 'compose.yaml'))).mtimeMs, OLD.getTime());
    });
  }
});
