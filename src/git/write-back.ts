/**
 * @module Write-back of image updates: commit new `image:` values into the compose files on the branch and push them,
 * so git stays the truth and the normal pipeline deploys the change.
 *
 *   scratch clone (depth 1, one branch) ─▶ head = expectedHead? ─no─▶ GIT_WRITE_BACK_CONFLICT
 *        │ yes
 *        ▼
 *   per service: the LAST compose file that sets services.<svc>.image (an override wins over the base file)
 *        ▼
 *   splice the new value over the old scalar's bytes (located with yaml's Document API) ─▶ nothing changed? ─▶ null
 *        ▼
 *   commit (author = committer) ─▶ push (fast-forward only) ─rejected─▶ fresh clone of the new head: compose files
 *   byte-identical to the first head? re-apply and push once more; else (or rejected again) GIT_WRITE_BACK_CONFLICT
 *
 * Only the bytes of the old value change: comments, quoting style (plain, 'single', "double"), indentation and line
 * endings of the rest of the file stay as they are; the edited file is parsed again and must differ from the old one
 * in exactly the new image values. Refused (GIT_WRITE_BACK_REFUSED, nothing pushed): an `image:` that uses `${VAR}`
 * interpolation (the value comes from the environment, which git does not hold), an alias, an anchored value or a
 * block scalar, a service
 * no compose file gives an `image:`, a compose file missing from the branch, invalid YAML, a symlinked compose file,
 * and a push the server refuses for another reason than a concurrent update (a protected branch). The scratch clone
 * lives in a fresh subdirectory of `workDir`, removed afterwards; the deploy checkout is never touched.
 */
import fs from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import git from 'isomorphic-git';
import { isAlias, isScalar, parseDocument, type Document } from 'yaml';
import { remoteTarget } from './auth.ts';
import { GitError, toGitError } from './errors.ts';
import { abortableHttp, withDeadline } from './http.ts';
import { normalizeBranch, normalizeCommit, shortSha } from './refs.ts';
import { assertSafeDir } from './sync.ts';

export interface WriteBackOptions {
  url: string;
  branch: string;
  /** Sent as HTTP Basic credentials in a header (like git sync); never in URLs or messages. */
  token?: string;
  /** Scratch directory the function may use and empties afterwards (never the deploy checkout). */
  workDir: string;
  /** Compose files relative to the repository root, in compose's order (later files override earlier ones). */
  composeFiles: readonly string[];
  /** Per service the new image reference. */
  updates: readonly { service: string; image: string }[];
  author: { name: string; email: string };
  /** Commit message (default: "shiparr: update <service> to <image>", services joined with ", "). */
  message?: string;
  timeoutMs: number;
  /** Refuse when the branch head is not this commit (the one deployed); null: any head. */
  expectedHead?: string | null;
}

/** Characters of an image reference (`registry:5000/org/app:1.2-alpine@sha256:…`); nothing YAML reads as syntax. */
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const refused = (message: string) => new GitError('GIT_WRITE_BACK_REFUSED', message);
const conflict = (message: string) => new GitError('GIT_WRITE_BACK_CONFLICT', message);

function checkOptions(o: WriteBackOptions): void {
  if (o.composeFiles.length === 0)
    throw new GitError('GIT_INVALID_INPUT', 'write-back needs at least one compose file');
  for (const f of o.composeFiles) {
    const norm = path.posix.normalize(f);
    if (f === '' || path.posix.isAbsolute(f) || norm.startsWith('../') || norm === '..' || f.includes('\\')) {
      throw new GitError('GIT_INVALID_INPUT', `compose file "${f}" must be a path inside the repository`);
    }
  }
  if (o.updates.length === 0) throw new GitError('GIT_INVALID_INPUT', 'write-back needs at least one image update');
  for (const u of o.updates) {
    if (!SERVICE.test(u.service)) throw new GitError('GIT_INVALID_INPUT', `invalid service name "${u.service}"`);
    if (!IMAGE.test(u.image) || u.image.length > 1024) {
      throw new GitError('GIT_INVALID_INPUT', `invalid image reference "${u.image.slice(0, 200)}" for ${u.service}`);
    }
  }
  if (new Set(o.updates.map((u) => u.service)).size !== o.updates.length) {
    throw new GitError('GIT_INVALID_INPUT', 'each service may be updated once per write-back');
  }
  if (!o.author.name.trim() || !o.author.email.trim()) {
    throw new GitError('GIT_INVALID_INPUT', 'write-back needs an author name and email');
  }
}

/** Default commit message. */
function writeBackMessage(updates: WriteBackOptions['updates']): string {
  return `shiparr: update ${updates.map((u) => `${u.service} to ${u.image}`).join(', ')}`;
}

/**
 * The compose files' texts with the updates applied, and the files that changed. Pure.
 * @throws GitError GIT_WRITE_BACK_REFUSED (see the module comment)
 */
function applyImageUpdates(
  files: ReadonlyMap<string, string>,
  order: readonly string[],
  updates: WriteBackOptions['updates'],
): { texts: Map<string, string>; changed: string[] } {
  const texts = new Map(files);
  const changed = new Set<string>();
  for (const u of updates) {
    // compose merges the files in order: the last one that sets the image is the one compose uses.
    let owner: string | undefined;
    for (const f of order) {
      const doc = parseDocument(texts.get(f) ?? '');
      if (doc.errors.length > 0) throw refused(`${f} is not valid YAML: ${doc.errors[0]?.message.split('\n')[0]}`);
      if (doc.hasIn(['services', u.service, 'image'])) owner = f;
    }
    if (owner === undefined) {
      throw refused(`no compose file sets services.${u.service}.image (${order.join(', ')})`);
    }
    const where = `${owner}: services.${u.service}.image`;
    const text = texts.get(owner) ?? '';
    const doc = parseDocument(text);
    const node: unknown = doc.getIn(['services', u.service, 'image'], true);
    if (isAlias(node)) throw refused(`${where} is a YAML alias; edit it by hand`);
    if (!isScalar(node) || typeof node.value !== 'string' || !node.range) {
      throw refused(`${where} is not a string`);
    }
    if (node.value.includes('$')) {
      throw refused(
        `${where} uses \${VAR} interpolation ("${node.value}"): its value comes from the environment, not from git, ` +
          'so Shiparr does not rewrite it; update the variable instead',
      );
    }
    if (node.anchor) throw refused(`${where} has an anchor (&${node.anchor}) other keys may use; edit it by hand`);
    if (node.value === u.image) continue;
    const quote =
      node.type === 'QUOTE_DOUBLE' ? '"' : node.type === 'QUOTE_SINGLE' ? "'" : node.type === 'PLAIN' ? '' : null;
    if (quote === null) throw refused(`${where} is a block scalar; edit it by hand`);
    const [start, end] = node.range;
    const next = `${text.slice(0, start)}${quote}${u.image}${quote}${text.slice(end)}`;
    // The edit must change exactly this value: parse again and compare everything.
    doc.setIn(['services', u.service, 'image'], u.image);
    const after = parseDocument(next);
    if (after.errors.length > 0 || !sameData(after, doc)) {
      throw refused(`${where} cannot be rewritten in place; edit it by hand`);
    }
    texts.set(owner, next);
    changed.add(owner);
  }
  return { texts, changed: [...changed] };
}

/** Both documents hold the same data (false when either cannot be converted, e.g. a dangling alias). */
function sameData(a: Document, b: Document): boolean {
  try {
    return isDeepStrictEqual(a.toJS(), b.toJS());
  } catch {
    return false;
  }
}

/** How long the cleanup waits for aborted work to unwind. */
const SETTLE_MS = 5_000;

/** Resolves when `p` settles or after `ms`, whichever comes first; never rejects. */
async function settled(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

interface Ctx {
  http: ReturnType<typeof abortableHttp>;
  url: string;
  headers: Record<string, string>;
  branch: string;
}

/** A fresh shallow clone of the branch in `dir`: its head and the compose files' texts. */
async function cloneAndRead(
  ctx: Ctx,
  dir: string,
  composeFiles: readonly string[],
): Promise<{ head: string; files: Map<string, string> }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    await git.clone({
      fs,
      http: ctx.http,
      dir,
      url: ctx.url,
      headers: ctx.headers,
      ref: ctx.branch,
      singleBranch: true,
      depth: 1,
      cache: {},
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'NotFoundError') {
      throw new GitError('GIT_BRANCH_NOT_FOUND', `branch "${ctx.branch}" not found on the remote`);
    }
    throw err;
  }
  const head = await git.resolveRef({ fs, dir, ref: `refs/heads/${ctx.branch}` });
  const files = new Map<string, string>();
  for (const f of composeFiles) {
    const file = path.join(dir, f);
    const st = await lstat(file).catch(() => null);
    if (!st) throw refused(`compose file ${f} is not on branch "${ctx.branch}" (commit ${shortSha(head)})`);
    if (!st.isFile()) throw refused(`compose file ${f} is not a regular file (a symlink or directory)`);
    files.set(f, await readFile(file, 'utf8'));
  }
  return { head, files };
}

const sameTexts = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/** Commits the new texts on the branch of the clone in `dir` and pushes. false: the remote moved (a retry may help). */
async function commitAndPush(
  ctx: Ctx,
  dir: string,
  o: WriteBackOptions,
  texts: ReadonlyMap<string, string>,
  changed: readonly string[],
): Promise<{ pushed: true; commit: string } | { pushed: false; why: string }> {
  for (const f of changed) {
    await writeFile(path.join(dir, f), texts.get(f) ?? '');
    await git.add({ fs, dir, filepath: f });
  }
  const author = { name: o.author.name, email: o.author.email };
  const commit = await git.commit({
    fs,
    dir,
    message: o.message ?? writeBackMessage(o.updates),
    author,
    committer: author,
  });
  try {
    await git.push({ fs, http: ctx.http, dir, url: ctx.url, headers: ctx.headers, ref: ctx.branch });
    return { pushed: true, commit };
  } catch (err) {
    const e = err as { code?: unknown; data?: { reason?: unknown }; message?: unknown };
    if (e.code === 'PushRejectedError') return { pushed: false, why: String(e.data?.reason ?? 'rejected') };
    if (e.code === 'GitPushError') {
      const why = String(e.message ?? '')
        .replace(/\s+/g, ' ')
        .trim();
      // receive-pack's answers to a concurrent update: the ref moved between our discovery and the update.
      if (/fast-forward|fetch first|failed to update|cannot lock|stale|is at [0-9a-f]+ but expected/i.test(why)) {
        return { pushed: false, why };
      }
      throw refused(`the git server refused the push: ${why.slice(0, 300)}`);
    }
    throw err;
  }
}

/**
 * Clones/fetches the branch (shallow), rewrites `services.<name>.image` in the compose file that defines it,
 * preserving comments and formatting, commits, pushes (fast-forward only); on a non-fast-forward push clones the new
 * head and retries once if the compose files are still as they were. Returns the new commit, or `null` when nothing
 * changed (every image already has its new value).
 * @throws GitError GIT_WRITE_BACK_CONFLICT, GIT_WRITE_BACK_REFUSED, GIT_AUTH_FAILED, GIT_BRANCH_NOT_FOUND,
 * GIT_INVALID_INPUT, GIT_UNREACHABLE / GIT_TIMEOUT (transient)…; messages never contain the token.
 */
export async function writeBackImages(o: WriteBackOptions): Promise<{ commit: string } | null> {
  const workDir = assertSafeDir(o.workDir);
  const branch = normalizeBranch(o.branch);
  const expectedHead = o.expectedHead ? normalizeCommit(o.expectedHead) : null;
  checkOptions(o);
  const target = remoteTarget(o.url, o.token);
  let scratch: string | undefined;
  let work: Promise<unknown> | undefined;
  const run = async (signal: AbortSignal): Promise<{ commit: string } | null> => {
    const ctx: Ctx = { http: abortableHttp(signal), url: target.url, headers: target.headers, branch };
    await mkdir(workDir, { recursive: true });
    scratch = await mkdtemp(path.join(workDir, 'write-back-'));
    const dir = path.join(scratch, 'repo');

    const first = await cloneAndRead(ctx, dir, o.composeFiles);
    if (expectedHead !== null && !first.head.startsWith(expectedHead)) {
      throw conflict(
        `branch "${branch}" is at ${shortSha(first.head)}, not at the deployed commit ${shortSha(expectedHead)}: ` +
          'the next deployment comes first',
      );
    }
    const { texts, changed } = applyImageUpdates(first.files, o.composeFiles, o.updates);
    if (changed.length === 0) return null;
    const attempt = await commitAndPush(ctx, dir, o, texts, changed);
    if (attempt.pushed) return { commit: attempt.commit };

    // Someone pushed in between: build on the new head when the compose files are untouched.
    const second = await cloneAndRead(ctx, dir, o.composeFiles);
    if (sameTexts(second.files, texts)) return null;
    if (!sameTexts(second.files, first.files)) {
      throw conflict(
        `branch "${branch}" moved to ${shortSha(second.head)} while writing back and the compose files changed ` +
          `there (${attempt.why}); the update is left for the next check`,
      );
    }
    const retry = await commitAndPush(ctx, dir, o, texts, changed);
    if (retry.pushed) return { commit: retry.commit };
    throw conflict(`branch "${branch}" keeps moving (${retry.why}); the update is left for the next check`);
  };
  try {
    return await withDeadline(o.timeoutMs, 'git write-back', (signal) => (work = run(signal)));
  } catch (err) {
    throw toGitError(err, 'GIT_WRITE_BACK_FAILED', target.secrets);
  } finally {
    // After a timeout the aborted work may still be unwinding: give it a moment, so it does not write into the
    // scratch directory after it was removed.
    if (work) await settled(work, SETTLE_MS);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
