/**
 * @module Identity of the plaintext files Shiparr writes, without their contents. A written file is recorded as
 * path, device, inode, size and modification time (ns); a file on disk is Shiparr's when all five still match.
 * Anything else at that path (a user's own file, a file git restored, a symlink, a directory) is not ours: it is
 * never overwritten nor removed. No hash of the plaintext is kept anywhere (a hash of a short secret can be
 * brute-forced). Used by the `sops-decrypt` worker (before overwriting), the repository actor (after a deploy) and
 * the daemon's boot sweep (after a crash).
 */
import { lstat, unlink } from 'node:fs/promises';
import type { PlaintextFile } from '../domain/types.ts';

/** The identity of the regular file at `path` as it is now, or null when there is none (missing, symlink, dir…). */
export async function fingerprint(path: string): Promise<PlaintextFile | null> {
  try {
    const st = await lstat(path, { bigint: true });
    if (!st.isFile()) return null;
    return { path, dev: String(st.dev), ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs) };
  } catch {
    return null;
  }
}

/** true when `a` and `b` name the same file in the same state. */
export function sameFile(a: PlaintextFile, b: PlaintextFile): boolean {
  return a.path === b.path && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

/** What `removePlaintext` did with one recorded file. */
export type RemoveOutcome = 'removed' | 'absent' | 'changed';

/**
 * Removes the recorded file if it is still exactly the one Shiparr wrote. `absent`: nothing there any more;
 * `changed`: something else is at the path now (left alone). Rejects only on an unexpected unlink error.
 */
export async function removePlaintext(file: PlaintextFile): Promise<RemoveOutcome> {
  let present = true;
  try {
    await lstat(file.path);
  } catch {
    present = false;
  }
  if (!present) return 'absent';
  const now = await fingerprint(file.path);
  if (!now || !sameFile(now, file)) return 'changed';
  try {
    await unlink(file.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  return 'removed';
}
