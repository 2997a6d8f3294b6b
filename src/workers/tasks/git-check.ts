/** @module Worker task `git-check`: the remote head of a branch, from one ref advertisement (no object download). */
import { remoteHead, type RemoteHeadOptions } from '../../git/check.ts';
import { gitTaskResult } from '../../git/task-result.ts';
import type { TaskOutput } from '../types.ts';

/** Resolves to `{ ok:true, commit }`, or `{ ok:false, code }` (GIT_BRANCH_NOT_FOUND, GIT_AUTH_FAILED, GIT_UNREACHABLE…). */
export default async function gitCheck(input: RemoteHeadOptions): Promise<TaskOutput<'git-check'>> {
  return gitTaskResult(async () => ({ commit: await remoteHead(input) }), 'GIT_CHECK_FAILED', [input.token]);
}
