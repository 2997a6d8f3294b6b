/** @module Cheap remote check: the head commit of one branch from a single ref advertisement (like `git ls-remote`). */
import git from 'isomorphic-git';
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

/**
 * Returns the sha of `refs/heads/<branch>` on the remote. No objects are downloaded: protocol v2 `ls-refs` with a
 * ref prefix (isomorphic-git falls back to the v1 advertisement when the server only speaks v1).
 * @throws GitError GIT_BRANCH_NOT_FOUND, GIT_AUTH_FAILED, GIT_UNREACHABLE (transient), GIT_TIMEOUT (transient)…
 */
export async function remoteHead(opts: RemoteHeadOptions): Promise<string> {
  const branch = normalizeBranch(opts.branch);
  const target = remoteTarget(opts.url, opts.token);
  const ref = `refs/heads/${branch}`;
  try {
    return await withDeadline(opts.timeoutMs, 'git check', async (signal) => {
      const refs = await git.listServerRefs({
        http: abortableHttp(signal),
        url: target.url,
        headers: target.headers,
        prefix: ref,
        protocolVersion: 2,
      });
      // The prefix also matches e.g. refs/heads/main-old: keep the exact ref only.
      const hit = refs.find((r) => r.ref === ref);
      if (!hit) throw new GitError('GIT_BRANCH_NOT_FOUND', `branch "${branch}" not found on the remote`);
      return hit.oid;
    });
  } catch (err) {
    throw toGitError(err, 'GIT_CHECK_FAILED', target.secrets);
  }
}
