/** @module Worker task `git-sync`: clone or fetch, then force the checkout to an exact commit. */
import { commitRange, syncCheckout } from '../../git/sync.ts';
import { gitTaskResult } from '../../git/task-result.ts';
import type { SyncOptions } from '../../git/sync.ts';
import type { TaskOutput } from '../types.ts';

/**
 * Resolves to `{ ok:true, commit, cloned }` (with `range`, the commits since `input.since`, when that is given), or
 * `{ ok:false, code }` (GIT_UNREACHABLE, GIT_COMMIT_NOT_FOUND…).
 */
export default async function gitSync(input: SyncOptions): Promise<TaskOutput<'git-sync'>> {
  return gitTaskResult(
    async () => {
      const r = await syncCheckout(input);
      if (input.since === undefined) return r;
      return { ...r, range: await commitRange(input.dir, input.since, r.commit) };
    },
    'GIT_SYNC_FAILED',
    [input.token],
  );
}
