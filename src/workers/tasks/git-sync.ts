/**
 * @module Worker task `git-sync`: clone or fetch, then force the checkout to an exact commit; the subject line of that
 * commit is read from the checkout (isomorphic-git `readCommit`) for the deployment row.
 */
import fs from 'node:fs';
import git from 'isomorphic-git';
import { commitRange, syncCheckout } from '../../git/sync.ts';
import { gitTaskResult } from '../../git/task-result.ts';
import type { SyncOptions } from '../../git/sync.ts';
import type { TaskOutput } from '../types.ts';

/** Longest subject passed on (the store caps it as well). */
const SUBJECT_MAX = 200;

/** The first line of the commit's message, or null when it cannot be read (the sync itself succeeded). */
async function commitSubject(dir: string, oid: string): Promise<string | null> {
  try {
    const { commit } = await git.readCommit({ fs, dir, oid });
    const line = (commit.message.split(/\r?\n/, 1)[0] ?? '').trim();
    return line.slice(0, SUBJECT_MAX);
  } catch {
    return null;
  }
}

/**
 * Resolves to `{ ok:true, commit, cloned, subject }` (with `range`, the commits since `input.since`, when that is
 * given), or `{ ok:false, code }` (GIT_UNREACHABLE, GIT_COMMIT_NOT_FOUND…).
 */
export default async function gitSync(input: SyncOptions): Promise<TaskOutput<'git-sync'>> {
  return gitTaskResult(
    async () => {
      const r = await syncCheckout(input);
      const subject = await commitSubject(input.dir, r.commit);
      if (input.since === undefined) return { ...r, subject };
      return { ...r, subject, range: await commitRange(input.dir, input.since, r.commit) };
    },
    'GIT_SYNC_FAILED',
    [input.token],
  );
}
