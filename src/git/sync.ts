/**
 * @module Sync a local checkout to an exact commit of a remote branch: clone on first use, else fetch; then force
 * the branch ref, HEAD and the working tree to that commit. Never deletes a file git does not track.
 *
 *   dir missing/empty ─────────────────────────────────────▶ clone (noCheckout) ───────────────────┐
 *   dir is a checkout of this repository (any URL spelling) ─▶ fetch ─(local damage)─▶ replace .git ─┤
 *   dir is a checkout of another URL, or its .git is unreadable ──────────▶ replace .git ────────────┤
 *   dir is non-empty and not a checkout (or a file) ─▶ refused: GIT_NOT_A_CHECKOUT, nothing touched  │
 *                                                                                                    ▼
 *     ensure target commit is local (shallow: fetch it by sha; refused → deepen step by step, then unshallow)
 *                                                                                                    ▼
 *     safety check of the working tree (below) ─▶ refs/heads/<branch> = target · HEAD → branch · checkout --force
 *
 * "Replace .git" clones into `.git.shiparr-new` inside the checkout, swaps it in for .git and keeps the old index
 * when it can be read (so git still knows which files it tracked); the working tree is untouched until the checkout.
 *
 * Working-tree semantics (isomorphic-git checkout with force, covered by tests): modified or deleted tracked files
 * are restored, files tracked before but not in the target commit are removed, and untracked (and ignored) files are
 * LEFT ALONE — compose projects commonly bind-mount data directories inside the checkout, so no `git clean`. Before
 * the checkout, anything that would make git replace something it does not track is refused as GIT_CHECKOUT_CONFLICT
 * naming the paths (refs and files unchanged): a directory where the commit has a file (Docker creates a missing bind
 * source as a directory), a file where the commit has a directory, an untracked file the commit would overwrite.
 * A tracked path whose type changes (file ↔ directory; isomorphic-git leaves those alone) is cleared first when it
 * holds only tracked files, else it is a conflict too.
 */
import fs from 'node:fs';
import { copyFile, lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import git, { type WalkerEntry } from 'isomorphic-git';
import type { HttpClient } from 'isomorphic-git/http/node';
import { sameRepository } from '../lib/git-url.ts';
import { remoteTarget } from './auth.ts';
import { GitError, toGitError } from './errors.ts';
import { abortableHttp, withDeadline } from './http.ts';
import { useNativeInflate } from './native-inflate.ts';
import { useLinearPackIndex } from './pack-index.ts';
import { normalizeBranch, normalizeCommit, shortSha } from './refs.ts';

// Objects are inflated by Node's zlib instead of pako wherever this module runs (the git-sync worker, the bench).
useNativeInflate();
// …and pack indexes are written in linear time (awaited before the first sync; resolves false when not installed).
const linearPackIndex = useLinearPackIndex();

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
  /**
   * The commit deployed before (null: none). When given, the git-sync task also returns the `range` of commits
   * since it, read from the checkout's objects after the sync (see {@link commitRange}).
   */
  since?: string | null;
}

/** The commits between two commits, newest first, as far as the checkout's objects tell. */
export interface CommitRange {
  /** Commits reachable from the new commit and not from the old one; null when the history is cut (shallow). */
  count: number | null;
  /** Subjects (first message line) of the newest of them, at most 5, newest first. */
  subjects: string[];
}

export interface SyncResult {
  /** Full sha now checked out. */
  commit: string;
  /** true when `dir` was (re)cloned. */
  cloned: boolean;
  /** true when only `dir/.git` was replaced (another remote, or local damage); the files around it were kept. */
  gitDirReplaced: boolean;
  /** Only when `since` was given: the commits since it. */
  range?: CommitRange;
  /**
   * How a commit missing from a shallow checkout was brought in: `by-hash` (fetched by its sha, depth 1) or `deepened`
   * (the server refused a fetch by sha, or the sha was abbreviated: the history was deepened). Absent otherwise.
   */
  fetched?: 'by-hash' | 'deepened';
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
  /** Set by ensureCommit when it had to fetch the wanted commit (SyncResult.fetched). */
  fetched?: 'by-hash' | 'deepened';
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
 * @throws GitError (GIT_UNREACHABLE / GIT_TIMEOUT transient; GIT_AUTH_FAILED, GIT_BRANCH_NOT_FOUND, GIT_COMMIT_NOT_FOUND,
 * GIT_NOT_A_CHECKOUT, GIT_CHECKOUT_CONFLICT…)
 */
export async function syncCheckout(opts: SyncOptions): Promise<SyncResult> {
  const dir = assertSafeDir(opts.dir);
  const branch = normalizeBranch(opts.branch);
  const wanted = opts.commit ? normalizeCommit(opts.commit) : undefined;
  const target = remoteTarget(opts.url, opts.token);
  await linearPackIndex;
  let ctx: Ctx | undefined;
  try {
    const result = await withDeadline(opts.timeoutMs, 'git sync', async (signal): Promise<SyncResult> => {
      ctx = {
        fs,
        http: abortableHttp(signal),
        dir,
        url: target.url,
        headers: target.headers,
        cache: {},
        branch,
      };
      const state = await inspectDir(dir);
      if (state.kind === 'new') {
        await mkdir(dir, { recursive: true });
        return { commit: await cloneFresh(ctx, wanted, opts.shallow), cloned: true, gitDirReplaced: false };
      }
      if (state.kind === 'foreign') throw notACheckout(dir, state.why);
      if (state.kind === 'checkout' && sameRepository(state.origin, target.url)) {
        try {
          // Same repository, maybe spelled differently (http → https, .git, case): keep the checkout and record the
          // spelling now configured.
          if (state.origin !== target.url)
            await git.setConfig({ fs, dir, path: 'remote.origin.url', value: target.url });
          return { commit: await update(ctx, wanted, opts.shallow), cloned: false, gitDirReplaced: false };
        } catch (err) {
          // Remote, auth, timeout, conflict and "no such commit" answers are facts: replacing .git would not change
          // them. Anything else (corrupt objects, broken refs…) is local damage of .git: replace .git only.
          const mapped = toGitError(err, 'GIT_SYNC_FAILED', target.secrets);
          if (signal.aborted || mapped.code !== 'GIT_SYNC_FAILED') throw mapped;
        }
      }
      return { commit: await replaceGitDir(ctx, wanted, opts.shallow), cloned: true, gitDirReplaced: true };
    });
    return ctx?.fetched ? { ...result, fetched: ctx.fetched } : result;
  } catch (err) {
    throw toGitError(err, 'GIT_SYNC_FAILED', target.secrets);
  }
}

function notACheckout(dir: string, why: string): GitError {
  return new GitError(
    'GIT_NOT_A_CHECKOUT',
    `${dir} ${why}, and Shiparr never deletes files it does not track: move its contents elsewhere (or point ` +
      'local_path at an empty or missing directory), or make it a git clone of the repository, then deploy again',
  );
}

type DirState =
  { kind: 'new' } | { kind: 'foreign'; why: string } | { kind: 'checkout'; origin: string } | { kind: 'damaged' };

/** What `dir` holds: nothing (missing or empty), a readable checkout, a checkout with unreadable .git, or other files. */
async function inspectDir(dir: string): Promise<DirState> {
  const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st) return { kind: 'new' };
  if (!st.isDirectory()) return { kind: 'foreign', why: 'exists and is not a directory' };
  const entries = await readdir(dir);
  if (entries.length === 0) return { kind: 'new' };
  const gitSt = await lstat(path.join(dir, '.git')).catch(() => null);
  // A replacement of .git that a crash interrupted (see replaceGitDir) is local damage, not a foreign directory.
  if (!gitSt && entries.some((e) => e === NEW_GITDIR || e === OLD_GITDIR)) return { kind: 'damaged' };
  if (!gitSt) return { kind: 'foreign', why: 'is not empty and is not a git checkout (no .git)' };
  if (!gitSt.isDirectory()) return { kind: 'foreign', why: 'has a .git that is not a directory' };
  try {
    await git.resolveRef({ fs, dir, ref: 'HEAD' });
    const origin: unknown = await git.getConfig({ fs, dir, path: 'remote.origin.url' });
    return typeof origin === 'string' && origin !== '' ? { kind: 'checkout', origin } : { kind: 'damaged' };
  } catch {
    return { kind: 'damaged' };
  }
}

const NEW_GITDIR = '.git.shiparr-new';
const OLD_GITDIR = '.git.shiparr-old';

/**
 * Replaces only `dir/.git` with a fresh clone of the configured remote (another URL, or local damage), keeping every
 * working-tree file: clone into `.git.shiparr-new` next to it, swap, then the usual safety check and checkout. The old
 * index is kept when it can be read, so files git tracked before are updated and untracked ones stay untouched; when
 * it cannot be read, the files of the old HEAD commit (when that commit can still be read) count as tracked.
 */
async function replaceGitDir(ctx: Ctx, wanted: string | undefined, shallow: boolean): Promise<string> {
  const gitdir = path.join(ctx.dir, '.git');
  const fresh = path.join(ctx.dir, NEW_GITDIR);
  const old = path.join(ctx.dir, OLD_GITDIR);
  // Interrupted between the two renames: the old .git still knows which files were tracked.
  if (!(await exists(gitdir)) && (await exists(old))) await rename(old, gitdir);
  await rm(fresh, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
  try {
    await cloneObjects(ctx, shallow, fresh);
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    throw err;
  }
  const oldIndexReadable = await git.listFiles({ fs, dir: ctx.dir, gitdir }).then(
    () => true,
    () => false,
  );
  const tracked = new Set<string>();
  if (!oldIndexReadable) {
    const oldHead = await git.resolveRef({ fs, dir: ctx.dir, gitdir, ref: 'HEAD' }).catch(() => null);
    for (const g of oldHead ? [gitdir, fresh] : []) {
      const files = await git.listFiles({ fs, dir: ctx.dir, gitdir: g, ref: oldHead ?? '' }).catch(() => null);
      if (files) {
        for (const f of files) tracked.add(f);
        break;
      }
    }
  }
  if (oldIndexReadable && (await exists(path.join(gitdir, 'index')))) {
    await copyFile(path.join(gitdir, 'index'), path.join(fresh, 'index'));
  }
  await rename(gitdir, old);
  await rename(fresh, gitdir);
  await rm(old, { recursive: true, force: true });
  const head = await git.resolveRef({ fs, dir: ctx.dir, ref: `refs/remotes/origin/${ctx.branch}` });
  return finish(ctx, wanted ?? head, shallow, tracked);
}

const branchNotFound = (ctx: Ctx) =>
  new GitError('GIT_BRANCH_NOT_FOUND', `branch "${ctx.branch}" not found on the remote`);

/** isomorphic-git reports a missing remote branch as NotFoundError (clone) or a null fetchHead (fetch). */
function isMissingRef(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'NotFoundError';
}

/** Clones the branch's objects and refs (no checkout) into `gitdir` (default `<dir>/.git`). */
async function cloneObjects(ctx: Ctx, shallow: boolean, gitdir?: string): Promise<void> {
  try {
    await git.clone({
      fs: ctx.fs,
      http: ctx.http,
      dir: ctx.dir,
      ...(gitdir ? { gitdir } : {}),
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
}

async function cloneFresh(ctx: Ctx, wanted: string | undefined, shallow: boolean): Promise<string> {
  await cloneObjects(ctx, shallow);
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

/**
 * Makes sure `want` is a local commit (deepening if needed), checks that nothing git does not track is in the way,
 * then forces branch, HEAD and worktree to it. `tracked`: paths to treat as tracked although not in the index.
 */
async function finish(
  ctx: Ctx,
  want: string,
  shallow: boolean,
  tracked: ReadonlySet<string> = new Set(),
): Promise<string> {
  const oid = await ensureCommit(ctx, want, shallow);
  const plan = await planCheckout(ctx, oid, tracked);
  if (plan.conflicts.length > 0) throw checkoutConflict(oid, plan.conflicts);
  // isomorphic-git leaves a tracked file that becomes a directory (or the reverse) as it is: clear those paths, which
  // hold only tracked files (checked above), so the checkout can write the commit's entry.
  for (const p of plan.clear) {
    await git.remove({ fs, dir: ctx.dir, filepath: p, cache: ctx.cache });
    await rm(path.join(ctx.dir, p), { recursive: true, force: true });
  }
  await git.writeRef({ fs, dir: ctx.dir, ref: `refs/heads/${ctx.branch}`, value: oid, force: true });
  await git.writeRef({ fs, dir: ctx.dir, ref: 'HEAD', value: `refs/heads/${ctx.branch}`, symbolic: true, force: true });
  // A forced checkout rewrites every tracked file; when only some paths differ (the usual incremental sync), it is
  // limited to them (filepaths also bounds isomorphic-git's matching cost, which grows with their number × the tree).
  const limit = plan.changed.length <= MAX_CHECKOUT_FILTER && plan.changed.length * 2 < plan.files;
  try {
    await git.checkout({
      fs,
      dir: ctx.dir,
      ref: ctx.branch,
      force: true,
      track: false,
      cache: ctx.cache,
      ...(limit ? { filepaths: plan.changed } : {}),
      // Bounded parallelism for the file writes (else one promise, one open file per file of the commit at once).
      nonBlocking: true,
      batchSize: CHECKOUT_BATCH,
    });
  } catch (err) {
    const paths = (err as { code?: unknown; data?: { filepaths?: unknown } }).data?.filepaths;
    if ((err as { code?: unknown }).code === 'CheckoutConflictError' && Array.isArray(paths)) {
      throw checkoutConflict(
        oid,
        paths.map((p) => ({ path: String(p), why: 'local files in the way' })),
      );
    }
    throw err;
  }
  return oid;
}

/** Above this many changed paths a checkout is not limited to them (isomorphic-git matches each walked path against all). */
const MAX_CHECKOUT_FILTER = 1000;
/** Files written at once by a checkout. */
const CHECKOUT_BATCH = 64;

interface InTheWay {
  path: string;
  why: string;
}

function checkoutConflict(oid: string, paths: InTheWay[]): GitError {
  const shown = paths.slice(0, 20).map((p) => `${p.path} (${p.why})`);
  const more = paths.length > shown.length ? ` and ${paths.length - shown.length} more` : '';
  return new GitError(
    'GIT_CHECKOUT_CONFLICT',
    `cannot check out ${shortSha(oid)}: ${shown.join(', ')}${more}. Shiparr does not delete or overwrite what git ` +
      'does not track: move these paths out of the checkout (or commit them), then deploy again',
  );
}

/**
 * What the checkout of `oid` would have to replace although git does not track it (not in the index, nor in
 * `tracked`): a directory where the commit has a file, a file where it has a directory, an untracked file with other
 * content where the commit has a file → `conflicts`. Tracked paths whose type changes (file ↔ directory) and that
 * hold only tracked files → `clear`. Untracked directories the commit does not touch are not walked.
 * `changed`: the paths a forced checkout has to write or remove (content, mode or presence differs between the
 * commit, the index and the working tree; everything else is already as the commit has it); `files`: the commit's
 * file count.
 */
async function planCheckout(
  ctx: Ctx,
  oid: string,
  tracked: ReadonlySet<string>,
): Promise<{ conflicts: InTheWay[]; clear: string[]; changed: string[]; files: number }> {
  const conflicts: InTheWay[] = [];
  const clear: string[] = [];
  const trackedDirs: string[] = [];
  const changed: string[] = [];
  let files = 0;
  await git.walk({
    fs,
    dir: ctx.dir,
    cache: ctx.cache,
    trees: [git.TREE({ ref: oid }), git.WORKDIR(), git.STAGE()],
    map: async (filepath, [commit, workdir, stage]) => {
      if (filepath === '.') return undefined;
      if (!commit) {
        if (!stage) return null; // nothing of the commit below: do not walk untracked trees
        changed.push(filepath); // tracked, not in the commit: removed
        return null;
      }
      const ct = await commit.type();
      if (ct !== 'tree') files++;
      if (!workdir) {
        changed.push(filepath); // missing (a directory: all below it)
        return ct === 'tree' ? undefined : null;
      }
      const [wt, st] = [await workdir.type(), stage ? await stage.type() : null];
      if (ct === 'blob' && wt === 'tree') {
        if (st === 'tree') trackedDirs.push(filepath);
        else conflicts.push({ path: filepath, why: 'a directory where the commit has a file' });
        changed.push(filepath);
        return null;
      }
      if (ct === 'tree' && wt === 'blob') {
        if (st === 'blob') {
          clear.push(filepath);
          changed.push(filepath);
          return undefined;
        }
        conflicts.push({ path: filepath, why: 'a file where the commit has a directory' });
        return null;
      }
      if (ct === 'blob' && wt === 'blob' && !stage && !tracked.has(filepath)) {
        if ((await commit.oid()) !== (await workdir.oid())) {
          conflicts.push({ path: filepath, why: 'an untracked file the commit would overwrite' });
        }
      }
      if (ct !== 'tree' && (!stage || (await differs(commit, stage, workdir)))) changed.push(filepath);
      return undefined;
    },
  });
  if (trackedDirs.length > 0) {
    const index = new Set(await git.listFiles({ fs, dir: ctx.dir, cache: ctx.cache }));
    for (const d of trackedDirs) {
      const entries = await readdir(path.join(ctx.dir, d), { withFileTypes: true, recursive: true });
      const untracked = entries
        .filter((e) => !e.isDirectory())
        .map((e) => path.relative(ctx.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
        .filter((f) => !index.has(f));
      if (untracked.length === 0) clear.push(d);
      else {
        const shown = untracked.slice(0, 3).join(', ') + (untracked.length > 3 ? ', …' : '');
        conflicts.push({ path: d, why: `a directory where the commit has a file, holding untracked ${shown}` });
      }
    }
  }
  return { conflicts, clear, changed, files };
}

/** Whether a tracked file's index entry or working copy differs from the commit's (content or mode). */
async function differs(commit: WalkerEntry, stage: WalkerEntry, workdir: WalkerEntry): Promise<boolean> {
  if ((await stage.type()) !== 'blob' || (await workdir.type()) !== 'blob') return true;
  const [co, cm] = [await commit.oid(), await commit.mode()];
  return (
    co !== (await stage.oid()) ||
    cm !== (await stage.mode()) ||
    co !== (await workdir.oid()) ||
    cm !== (await workdir.mode())
  );
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
 * (rollback to an earlier commit): a full sha is fetched by itself first (depth 1); when the server refuses that, or
 * the sha is abbreviated, deepen by growing steps, then unshallow completely. Records how in `ctx.fetched`.
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
    // A full sha is asked for directly (depth 1): servers that allow it (protocol v2, GitHub, GitLab, or
    // uploadpack.allowReachableSHA1InWant) send just that commit. A refusal falls back to deepening the branch.
    if (/^[0-9a-f]{40}$/.test(want)) {
      const byHash = await git
        .fetch({
          fs: ctx.fs,
          http: ctx.http,
          dir: ctx.dir,
          url: ctx.url,
          headers: ctx.headers,
          cache: ctx.cache,
          ref: ctx.branch,
          remoteRef: want,
          singleBranch: true,
          tags: false,
          depth: 1,
        })
        // Any failure falls through: an unreachable remote, bad credentials or a timeout fail the deepening too, with
        // the error the sync reports.
        .then(
          () => true,
          () => false,
        );
      const oid = byHash ? await localCommit(ctx, want) : null;
      if (oid) {
        ctx.fetched = 'by-hash';
        return oid;
      }
    }
    ctx.fetched = 'deepened';
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

/** Commits read at most by {@link commitRange} before it gives up counting (a force-push onto unrelated history). */
const MAX_RANGE_WALK = 10_000;
const MAX_RANGE_SUBJECTS = 5;

/**
 * `git rev-list to ^from` over the objects of the checkout at `dir`: the commits reachable from `to` and not from
 * `from`, newest (by committer time) first. Commits whose objects are missing (a shallow clone's cut history) make the
 * count unknown (null); the subjects read until then are still returned. `from` null (first deployment): the count
 * is unknown and the subject of `to` alone is given. Never throws: anything unreadable gives `{count: null}`.
 */
export async function commitRange(
  dir: string,
  from: string | null,
  to: string,
  cache: object = {},
): Promise<CommitRange> {
  type Entry = { oid: string; time: number; parents: string[]; subject: string } | null;
  const read = async (oid: string): Promise<Entry> => {
    try {
      const { commit } = await git.readCommit({ fs, dir, oid, cache });
      const subject = commit.message.split('\n', 1)[0]?.trim() ?? '';
      return { oid, time: commit.committer.timestamp, parents: commit.parent, subject };
    } catch {
      return null;
    }
  };
  try {
    if (from === to) return { count: 0, subjects: [] };
    if (from === null) {
      const head = await read(to);
      return { count: null, subjects: head ? [head.subject] : [] };
    }
    const uninteresting = new Set<string>();
    const seen = new Set<string>();
    const queue: { e: NonNullable<Entry>; bad: boolean }[] = [];
    let cut = false;
    const push = async (oid: string, bad: boolean): Promise<void> => {
      if (bad) uninteresting.add(oid);
      if (seen.has(oid)) return;
      seen.add(oid);
      const e = await read(oid);
      if (!e) {
        if (!bad) cut = true;
        return;
      }
      queue.push({ e, bad });
    };
    await push(from, true);
    if (queue.length === 0) cut = true; // the old commit is not here: nothing to subtract
    await push(to, false);
    const picked: { oid: string; subject: string }[] = [];
    let walked = 0;
    // Newest first; stop once only commits reachable from `from` are left to walk.
    while (queue.some((q) => !uninteresting.has(q.e.oid))) {
      if (++walked > MAX_RANGE_WALK) return { count: null, subjects: firstSubjects(picked, uninteresting) };
      queue.sort((a, b) => b.e.time - a.e.time);
      const { e } = queue.shift()!;
      const bad = uninteresting.has(e.oid);
      if (!bad) picked.push({ oid: e.oid, subject: e.subject });
      for (const p of e.parents) await push(p, bad);
    }
    const kept = picked.filter((p) => !uninteresting.has(p.oid));
    return { count: cut ? null : kept.length, subjects: firstSubjects(kept, uninteresting) };
  } catch {
    return { count: null, subjects: [] };
  }
}

function firstSubjects(picked: { oid: string; subject: string }[], uninteresting: ReadonlySet<string>): string[] {
  return picked
    .filter((p) => !uninteresting.has(p.oid))
    .slice(0, MAX_RANGE_SUBJECTS)
    .map((p) => p.subject);
}
