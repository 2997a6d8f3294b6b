/**
 * @module Sync a local checkout to an exact commit of a remote branch: clone on first use, else fetch; then force
 * the branch ref, HEAD and the working tree to that commit.
 *
 *   dir missing/empty ─────────────────────────────▶ clone (noCheckout) ─┐
 *   dir is our checkout of this URL ──▶ fetch ──(local corruption)──▶ empty dir, clone
 *                                        │                            │
 *                                        ▼                            ▼
 *                         ensure target commit is local (deepen a shallow clone step by step, then unshallow)
 *                                        ▼
 *                    write refs/heads/<branch> = target (forced) · HEAD → branch · checkout --force
 *
 * Working-tree semantics (isomorphic-git checkout with force, covered by tests): modified or deleted tracked files
 * are restored, files tracked before but not in the target commit are removed, and untracked files are LEFT
 * ALONE — compose projects commonly bind-mount data directories inside the checkout, so no `git clean`.
 */
import fs from 'node:fs';
import { lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import git from 'isomorphic-git';
import type { HttpClient } from 'isomorphic-git/http/node';
import { remoteTarget } from './auth.ts';
import { GitError, toGitError } from './errors.ts';
import { abortableHttp, withDeadline } from './http.ts';
import { normalizeBranch, normalizeCommit, shortSha } from './refs.ts';

export interface SyncOptions {
  url: string;
  branch: string;
  /** Exact commit (full or abbreviated sha) to check out; default: the fetched branch head. */
  commit?: string;
  /** Absolute checkout directory. */
  dir: string;
  /** Depth-1 clone/fetch; older commits are fetched on demand. */
  shallow: boolean;
  /** Sent as HTTP Basic credentials (x-access-token:<token>) in an Authorization header; never in URLs. */
  token?: string;
  timeoutMs: number;
}

export interface SyncResult {
  /** Full sha now checked out. */
  commit: string;
  /** true when `dir` was (re)cloned. */
  cloned: boolean;
}

/** What git sends for `--unshallow` ("infinite" depth). */
const FULL_DEPTH = 0x7fffffff;
/** Deepening steps (commits, relative to the current shallow boundary) tried before a full unshallow. */
const DEEPEN_STEPS = [10, 100, 1000];

interface Ctx {
  fs: typeof fs;
  http: HttpClient;
  dir: string;
  url: string;
  headers: Record<string, string>;
  /** Per-sync isomorphic-git cache (parsed pack indexes); never shared across syncs, so a re-clone cannot see stale entries. */
  cache: object;
  branch: string;
}

/** Refuses directories that must never be emptied: relative paths, '' and a filesystem root. */
export function assertSafeDir(dir: string): string {
  if (typeof dir !== 'string' || dir.trim() === '' || !path.isAbsolute(dir)) {
    throw new GitError('GIT_INVALID_INPUT', 'checkout directory must be an absolute path');
  }
  const resolved = path.resolve(dir);
  if (resolved === path.parse(resolved).root) {
    throw new GitError('GIT_INVALID_INPUT', 'refusing to use a filesystem root as checkout directory');
  }
  return resolved;
}

/**
 * Makes `opts.dir` an exact checkout of `opts.commit` (or the branch head) of the remote branch.
 * @throws GitError (GIT_UNREACHABLE / GIT_TIMEOUT transient; GIT_AUTH_FAILED, GIT_BRANCH_NOT_FOUND, GIT_COMMIT_NOT_FOUND…)
 */
export async function syncCheckout(opts: SyncOptions): Promise<SyncResult> {
  const dir = assertSafeDir(opts.dir);
  const branch = normalizeBranch(opts.branch);
  const wanted = opts.commit ? normalizeCommit(opts.commit) : undefined;
  const target = remoteTarget(opts.url, opts.token);
  try {
    return await withDeadline(opts.timeoutMs, 'git sync', async (signal) => {
      const ctx: Ctx = {
        fs,
        http: abortableHttp(signal),
        dir,
        url: target.url,
        headers: target.headers,
        cache: {},
        branch,
      };
      if (await isOurCheckout(dir, target.url)) {
        try {
          return { commit: await update(ctx, wanted, opts.shallow), cloned: false };
        } catch (err) {
          // Remote, auth, timeout and "no such commit" answers are facts about the remote: re-cloning would
          // not change them. Anything else (corrupt objects, broken refs…) is local damage: start over.
          const mapped = toGitError(err, 'GIT_SYNC_FAILED', target.secrets);
          if (signal.aborted || mapped.code !== 'GIT_SYNC_FAILED') throw mapped;
        }
      }
      await emptyDir(dir);
      return { commit: await cloneFresh(ctx, wanted, opts.shallow), cloned: true };
    });
  } catch (err) {
    throw toGitError(err, 'GIT_SYNC_FAILED', target.secrets);
  }
}

/** True when `dir` holds a readable git repository whose origin is `url`. */
async function isOurCheckout(dir: string, url: string): Promise<boolean> {
  try {
    const st = await stat(path.join(dir, '.git'));
    if (!st.isDirectory()) return false;
    await git.resolveRef({ fs, dir, ref: 'HEAD' });
    const origin = await git.getConfig({ fs, dir, path: 'remote.origin.url' });
    return origin === url;
  } catch {
    return false;
  }
}

/** Deletes everything inside `dir` (not `dir` itself: it may be a mount point), creating it if needed. */
async function emptyDir(dir: string): Promise<void> {
  const safe = assertSafeDir(dir);
  const st = await lstat(safe).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st && !st.isDirectory()) await rm(safe, { force: true });
  if (!st || !st.isDirectory()) {
    await mkdir(safe, { recursive: true });
    return;
  }
  for (const entry of await readdir(safe)) {
    await rm(path.join(safe, entry), { recursive: true, force: true, maxRetries: 3 });
  }
}

const branchNotFound = (ctx: Ctx) =>
  new GitError('GIT_BRANCH_NOT_FOUND', `branch "${ctx.branch}" not found on the remote`);

/** isomorphic-git reports a missing remote branch as NotFoundError (clone) or a null fetchHead (fetch). */
function isMissingRef(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'NotFoundError';
}

async function cloneFresh(ctx: Ctx, wanted: string | undefined, shallow: boolean): Promise<string> {
  try {
    await git.clone({
      fs: ctx.fs,
      http: ctx.http,
      dir: ctx.dir,
      url: ctx.url,
      headers: ctx.headers,
      cache: ctx.cache,
      ref: ctx.branch,
      singleBranch: true,
      noTags: true,
      noCheckout: true,
      depth: shallow ? 1 : undefined,
    });
  } catch (err) {
    if (isMissingRef(err)) throw branchNotFound(ctx);
    throw err;
  }
  const head = await git.resolveRef({ fs, dir: ctx.dir, ref: `refs/remotes/origin/${ctx.branch}` });
  return finish(ctx, wanted ?? head, shallow);
}

async function update(ctx: Ctx, wanted: string | undefined, shallow: boolean): Promise<string> {
  const isShallow = await exists(path.join(ctx.dir, '.git', 'shallow'));
  let result;
  try {
    result = await git.fetch({
      fs: ctx.fs,
      http: ctx.http,
      dir: ctx.dir,
      url: ctx.url,
      headers: ctx.headers,
      cache: ctx.cache,
      ref: ctx.branch,
      remoteRef: ctx.branch,
      singleBranch: true,
      tags: false,
      // shallow: only the new head; full mode on a formerly shallow checkout: unshallow once.
      depth: shallow ? 1 : isShallow ? FULL_DEPTH : undefined,
    });
  } catch (err) {
    if (isMissingRef(err)) throw branchNotFound(ctx);
    throw err;
  }
  if (!result.fetchHead) throw branchNotFound(ctx);
  return finish(ctx, wanted ?? result.fetchHead, shallow);
}

/** Makes sure `want` is a local commit (deepening if needed), then forces branch, HEAD and worktree to it. */
async function finish(ctx: Ctx, want: string, shallow: boolean): Promise<string> {
  const oid = await ensureCommit(ctx, want, shallow);
  await git.writeRef({ fs, dir: ctx.dir, ref: `refs/heads/${ctx.branch}`, value: oid, force: true });
  await git.writeRef({ fs, dir: ctx.dir, ref: 'HEAD', value: `refs/heads/${ctx.branch}`, symbolic: true, force: true });
  await git.checkout({ fs, dir: ctx.dir, ref: ctx.branch, force: true, track: false, cache: ctx.cache });
  return oid;
}

async function localCommit(ctx: Ctx, want: string): Promise<string | null> {
  try {
    const oid = want.length === 40 ? want : await git.expandOid({ fs, dir: ctx.dir, oid: want, cache: ctx.cache });
    await git.readCommit({ fs, dir: ctx.dir, oid, cache: ctx.cache });
    return oid;
  } catch (err) {
    if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'AmbiguousError') {
      throw new GitError('GIT_INVALID_INPUT', `abbreviated commit id "${want}" is ambiguous`);
    }
    return null;
  }
}

/**
 * Returns the full sha of `want`, fetching older history of the branch when a shallow checkout lacks it
 * (rollback to an earlier commit): deepen by growing steps, then unshallow completely.
 */
async function ensureCommit(ctx: Ctx, want: string, shallow: boolean): Promise<string> {
  const found = await localCommit(ctx, want);
  if (found) return found;
  const shallowFile = path.join(ctx.dir, '.git', 'shallow');
  const deepen = async (depth: number, relative: boolean) => {
    await git.fetch({
      fs: ctx.fs,
      http: ctx.http,
      dir: ctx.dir,
      url: ctx.url,
      headers: ctx.headers,
      cache: ctx.cache,
      ref: ctx.branch,
      remoteRef: ctx.branch,
      singleBranch: true,
      tags: false,
      depth,
      relative,
    });
  };
  if (shallow || (await exists(shallowFile))) {
    for (const step of DEEPEN_STEPS) {
      if (!(await exists(shallowFile))) break;
      await deepen(step, true);
      const oid = await localCommit(ctx, want);
      if (oid) return oid;
    }
    if (await exists(shallowFile)) {
      await deepen(FULL_DEPTH, false);
      const oid = await localCommit(ctx, want);
      if (oid) return oid;
    }
  }
  throw new GitError(
    'GIT_COMMIT_NOT_FOUND',
    `commit ${shortSha(want)} is not in the history of branch "${ctx.branch}" on the remote`,
  );
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
