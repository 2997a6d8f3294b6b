/** @module Atomic, private file writes for decrypted secrets. */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` atomically with mode 0600: a temp file in the same directory (created exclusively,
 * never readable by others), fsync, rename over the target, then fsync the directory so the rename is durable.
 * Readers see either the old or the new content, never a partial plaintext. A symlink at `path` is replaced,
 * not followed.
 */
export async function writeFileAtomic0600(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    try {
      // The umask cannot widen 0600, but a pre-set ACL or odd umask could narrow it oddly: make it exact.
      await fh.chmod(0o600);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // Directory fsync is best-effort: some filesystems refuse to open directories for it.
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* durability of the rename is not guaranteed there; the content is already complete */
  }
}
