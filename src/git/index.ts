/** @module Git over smart HTTP (isomorphic-git): remote head checks and exact-commit checkouts, token-safe. */
export { remoteHead, type RemoteHeadOptions } from './check.ts';
export { syncCheckout, assertSafeDir, type SyncOptions, type SyncResult } from './sync.ts';
export { remoteTarget, tokenUsername, type RemoteTarget } from './auth.ts';
export { GitError, toGitError, type GitErrorCode } from './errors.ts';
export { normalizeBranch, normalizeCommit, shortSha } from './refs.ts';
export { abortableHttp, withDeadline } from './http.ts';
