/**
 * @module Export one commit's tree into a scratch directory, for a plan that must not touch the live checkout: read
 * from the checkout's object store when it has the commit, else clone the branch into the scratch directory itself
 * (a scratch git dir) and check the commit out there. The live checkout's refs, index and files are never written.
 */
import fs from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import git from 'isomorphic-git';
import { GitError, toGitError } from './errors.ts';
import { normalizeCommit } from './refs.ts';
import { syncCheckout, type SyncOptions } from './sync.ts';

export interface ExportOptions extends Omit<SyncOptions, 'dir' | 'commit'> {
  /** The live checkout: its object store is read, nothing else. */
  checkoutDir: string;
  /** Full or abbreviated sha. */
  commit: string;
  /** Absolute, empty scratch directory the tree is written into. */
  dir: string;
}

/** Writes the tree of `commit` under `dir` (files, executable bits, symlinks; submodules are skipped). */
async function writeTree(gitdir: string, oid: string, dir: string): Promise<void> {
  const cache = {};
  const walkTree = async (treeOid: string, into: string): Promise<void> => {
    const { tree } = await git.readTree({ fs, gitdir, oid: treeOid, cache });
    await mkdir(into, { recursive: true });
    for (const e of tree) {
      const to = path.join(into, e.path);
      if (e.type === 'tree') await walkTree(e.oid, to);
      else if (e.type === 'blob') {
        const { blob } = await git.readBlob({ fs, gitdir, oid: e.oid, cache });
        if (e.mode === '120000') await symlink(Buffer.from(blob).toString('utf8'), to);
        else {
          await writeFile(to, blob);
          if (e.mode === '100755') await chmod(to, 0o755);
        }
      }
    }
  };
  const { commit } = await git.readCommit({ fs, gitdir, oid, cache });
  await walkTree(commit.tree, dir);
}

/**
 * Exports `commit` into `opts.dir`; returns the full sha.
 * @throws GitError (GIT_COMMIT_NOT_FOUND when neither the checkout nor the branch has it; network codes when fetching)
 */
export async function exportCommit(opts: ExportOptions): Promise<{ commit: string; fetched: boolean }> {
  const wanted = normalizeCommit(opts.commit);
  const gitdir = path.join(opts.checkoutDir, '.git');
  let full: string | null = null;
  try {
    full = await git.expandOid({ fs, gitdir, oid: wanted });
    await git.readCommit({ fs, gitdir, oid: full });
  } catch {
    full = null;
  }
  if (full) {
    try {
      await writeTree(gitdir, full, opts.dir);
      return { commit: full, fetched: false };
    } catch (err) {
      throw toGitError(err, 'GIT_LOCAL_IO');
    }
  }
  // Not in the live object store: a clone of its own in the scratch directory.
  const r = await syncCheckout({ ...opts, dir: opts.dir, commit: wanted });
  if (!r.commit.startsWith(wanted)) throw new GitError('GIT_COMMIT_NOT_FOUND', `commit ${wanted} not found`);
  return { commit: r.commit, fetched: true };
}
