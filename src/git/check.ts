/**
 * @module Cheap remote check: the head commit of one branch, in one HTTP request once the remote is known.
 *
 * Paths, remembered per remote URL (module state, so per worker thread):
 *   - unknown / `v0`: `GET info/refs?service=git-upload-pack` with `Git-Protocol: version=2`. A server without
 *     protocol v2 answers with its full ref advertisement (v0/v1): the answer, one request. A v2 server answers with
 *     its capabilities: then one `ls-refs` POST follows (two requests, this once) and the remote is remembered as `v2`.
 *   - `v2`: one `POST git-upload-pack` carrying `command=ls-refs` + `ref-prefix refs/heads/<branch>` (stateless, what
 *     git itself sends after discovery); the response holds only the matching refs, whatever the repository size.
 *   - `two-step`: isomorphic-git's `listServerRefs` (discovery GET, then ls-refs POST), the path used before. Taken
 *     when the shortcut fails for any reason but auth (401/403), not-found (404) or the deadline, and kept for
 *     {@link TWO_STEP_RETRY_MS} before the shortcut is tried again.
 * See docs/git-checks.md for the measurements and which forges accept the direct POST.
 */
import git from 'isomorphic-git';
import type { HttpClient } from 'isomorphic-git/http/node';
import { remoteTarget } from './auth.ts';
import { GitError, toGitError } from './errors.ts';
import { abortableHttp, withDeadline } from './http.ts';
import { normalizeBranch } from './refs.ts';

export interface RemoteHeadOptions {
  url: string;
  branch: string;
  /** Sent as HTTP Basic credentials in a header; never put in the URL. */
  token?: string;
  timeoutMs: number;
}

/** How a remote is checked; see the module comment. */
type CheckPath = 'v0' | 'v2' | 'two-step';

/** After a fallback to the two-step path, how long before the one-request shortcut is tried again. */
const TWO_STEP_RETRY_MS = 60 * 60 * 1000;
/** Remotes remembered per worker; the oldest is forgotten beyond this (a forgotten remote costs one discovery). */
const MAX_REMEMBERED = 20_000;
/** Largest response body read by the shortcut (a v0 advertisement grows with the number of refs). */
const MAX_BODY_BYTES = 32 << 20;

const remembered = new Map<string, { path: CheckPath; retryAt: number }>();

function remember(url: string, path: CheckPath): void {
  remembered.delete(url);
  if (remembered.size >= MAX_REMEMBERED) remembered.delete(remembered.keys().next().value as string);
  remembered.set(url, { path, retryAt: path === 'two-step' ? Date.now() + TWO_STEP_RETRY_MS : 0 });
}

/** The path the next check of `url` takes (for tests and benchmarks; `undefined` = not known yet). */
export function rememberedPath(url: string): CheckPath | undefined {
  return remembered.get(remoteTarget(url).url)?.path;
}

/** Thrown by the shortcut when the answer is not a well-formed git response: the two-step path is tried instead. */
class ShortcutError extends Error {}

/** Same shape as isomorphic-git's HttpError, so {@link toGitError} classifies a status exactly as before. */
const httpError = (statusCode: number, statusMessage: string) =>
  Object.assign(new Error(`HTTP Error: ${statusCode} ${statusMessage}`), { code: 'HttpError', data: { statusCode } });

const pkt = (line: string): Buffer => {
  const body = Buffer.from(line, 'utf8');
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
};

/** Splits a pkt-line stream; `null` stands for a flush (0000), delim (0001) or response-end (0002) packet. */
function* pktLines(data: Buffer): Generator<string | null> {
  let at = 0;
  while (at < data.length) {
    if (at + 4 > data.length) throw new ShortcutError('truncated pkt-line');
    const hex = data.toString('latin1', at, at + 4);
    if (!/^[0-9a-f]{4}$/i.test(hex)) throw new ShortcutError('not a pkt-line stream');
    const len = parseInt(hex, 16);
    if (len < 4) {
      yield null;
      at += 4;
      continue;
    }
    if (at + len > data.length) throw new ShortcutError('truncated pkt-line');
    yield data.toString('utf8', at + 4, at + len).replace(/\n$/, '');
    at += len;
  }
}

const REF_LINE = /^([0-9a-f]{40}|[0-9a-f]{64}) (\S+)/;

async function readBody(res: Awaited<ReturnType<HttpClient['request']>>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw new ShortcutError('response too large');
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** 200 with the expected content type, else an HttpError (401/403/404 stay auth/not-found) or a ShortcutError. */
async function expectOk(res: Awaited<ReturnType<HttpClient['request']>>, contentType: string): Promise<Buffer> {
  // The body of a refusal is not read: release the socket now rather than when the stream is collected.
  if (res.statusCode !== 200) await res.body?.return?.();
  if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 404) {
    throw httpError(res.statusCode, res.statusMessage);
  }
  if (res.statusCode !== 200) throw new ShortcutError(`HTTP ${res.statusCode}`);
  const type = String(res.headers?.['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  if (type !== contentType) throw new ShortcutError(`unexpected content type "${type.slice(0, 80)}"`);
  return readBody(res);
}

type Found = { kind: 'refs'; oid: string | undefined } | { kind: 'v2' };

/** Discovery GET: the ref from a v0/v1 advertisement, or `v2` when the server answered with its v2 capabilities. */
async function discover(http: HttpClient, url: string, headers: Record<string, string>, ref: string): Promise<Found> {
  const res = await http.request({
    method: 'GET',
    url: `${url}/info/refs?service=git-upload-pack`,
    headers: { ...headers, 'Git-Protocol': 'version=2' },
  });
  const lines = [...pktLines(await expectOk(res, 'application/x-git-upload-pack-advertisement'))];
  let i = 0;
  while (lines[i] === null) i++;
  if (lines[i] === 'version 2') return v2Capabilities(lines.slice(i + 1));
  if (lines[i] !== '# service=git-upload-pack') throw new ShortcutError('not a git-upload-pack advertisement');
  i++;
  while (lines[i] === null) i++;
  if (lines[i] === 'version 2') return v2Capabilities(lines.slice(i + 1));
  if (lines.at(-1) !== null) throw new ShortcutError('advertisement not terminated by a flush');
  let oid: string | undefined;
  for (const line of lines.slice(i)) {
    if (line === null) continue;
    const m = REF_LINE.exec(line.split('\0')[0]!);
    if (!m) throw new ShortcutError('malformed ref line');
    if (m[2] === ref) oid = m[1];
  }
  return { kind: 'refs', oid };
}

function v2Capabilities(lines: (string | null)[]): Found {
  if (!lines.some((l) => l === 'ls-refs' || l?.startsWith('ls-refs='))) throw new ShortcutError('no ls-refs in v2');
  return { kind: 'v2' };
}

/** One protocol v2 `ls-refs` POST restricted to `ref`. */
async function lsRefs(
  http: HttpClient,
  url: string,
  headers: Record<string, string>,
  ref: string,
): Promise<string | undefined> {
  const body = Buffer.concat([
    pkt('command=ls-refs\n'),
    pkt('agent=git/shiparr\n'),
    Buffer.from('0001', 'latin1'),
    pkt(`ref-prefix ${ref}\n`),
    Buffer.from('0000', 'latin1'),
  ]);
  const res = await http.request({
    method: 'POST',
    url: `${url}/git-upload-pack`,
    headers: {
      ...headers,
      'Git-Protocol': 'version=2',
      'content-type': 'application/x-git-upload-pack-request',
      accept: 'application/x-git-upload-pack-result',
    },
    // An array, like isomorphic-git's own request bodies: the client sends it as one buffer with a Content-Length
    // and can replay it on a 307/308 redirect (a stream could not be).
    body: [body] as unknown as AsyncIterableIterator<Uint8Array>,
  });
  const lines = [...pktLines(await expectOk(res, 'application/x-git-upload-pack-result'))];
  if (lines.at(-1) !== null) throw new ShortcutError('ls-refs response not terminated by a flush');
  let oid: string | undefined;
  for (const line of lines) {
    if (line === null) continue;
    const m = REF_LINE.exec(line);
    if (!m) throw new ShortcutError(`unexpected ls-refs line "${line.slice(0, 80)}"`);
    if (m[2] === ref) oid = m[1];
  }
  return oid;
}

/** The path used before: isomorphic-git discovery, then ls-refs with a prefix (or its v1 fallback). */
async function twoStep(
  http: HttpClient,
  url: string,
  headers: Record<string, string>,
  ref: string,
): Promise<string | undefined> {
  const refs = await git.listServerRefs({ http, url, headers: { ...headers }, prefix: ref, protocolVersion: 2 });
  // The prefix also matches e.g. refs/heads/main-old: keep the exact ref only.
  return refs.find((r) => r.ref === ref)?.oid;
}

const isAuthOrNotFound = (err: unknown): boolean => {
  const status = (err as { code?: unknown; data?: { statusCode?: unknown } }).data?.statusCode;
  return (err as { code?: unknown }).code === 'HttpError' && (status === 401 || status === 403 || status === 404);
};

/**
 * Returns the sha of `refs/heads/<branch>` on the remote. No objects are downloaded; one HTTP request per check once
 * the remote's path is known (see the module comment), falling back to the two-request path when the shortcut fails.
 * @throws GitError GIT_BRANCH_NOT_FOUND, GIT_AUTH_FAILED, GIT_REPO_NOT_FOUND, GIT_UNREACHABLE (transient),
 * GIT_TIMEOUT (transient)…
 */
export async function remoteHead(opts: RemoteHeadOptions): Promise<string> {
  const branch = normalizeBranch(opts.branch);
  const target = remoteTarget(opts.url, opts.token);
  const ref = `refs/heads/${branch}`;
  try {
    const oid = await withDeadline(opts.timeoutMs, 'git check', async (signal) => {
      const http = abortableHttp(signal);
      const known = remembered.get(target.url);
      if (known?.path === 'two-step' && Date.now() < known.retryAt) {
        return twoStep(http, target.url, target.headers, ref);
      }
      try {
        if (known?.path === 'v2') return await lsRefs(http, target.url, target.headers, ref);
        const found = await discover(http, target.url, target.headers, ref);
        if (found.kind === 'refs') {
          remember(target.url, 'v0');
          return found.oid;
        }
        const oid = await lsRefs(http, target.url, target.headers, ref);
        remember(target.url, 'v2');
        return oid;
      } catch (err) {
        if (signal.aborted || isAuthOrNotFound(err)) throw err;
        remembered.delete(target.url);
        const oid = await twoStep(http, target.url, target.headers, ref);
        remember(target.url, 'two-step');
        return oid;
      }
    });
    if (!oid) throw new GitError('GIT_BRANCH_NOT_FOUND', `branch "${branch}" not found on the remote`);
    return oid;
  } catch (err) {
    throw toGitError(err, 'GIT_CHECK_FAILED', target.secrets);
  }
}
