/** @module Atomic, private file writes for decrypted secrets. */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SopsError } from './errors.ts';

/** Exclusive creation that never follows a link at the temp path. */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Refuses a symlink (or anything but a regular file) at `path`: an output is never written through or over a link. */
async function refuseLink(path: string): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st?.isSymbolicLink())
    throw new SopsError('SOPS_BAD_PATH', `${path} is a symlink; it is not followed or replaced`);
  if (st && !st.isFile()) throw new SopsError('SOPS_BAD_PATH', `${path} exists and is not a regular file`);
}

/**
 * Writes `data` to `path` atomically with mode 0600: a temp file in the same directory (created exclusively,
 * never readable by others), fsync, rename over the target, then fsync the directory so the rename is durable.
 * Readers see either the old or the new content, never a partial plaintext. A symlink at `path` is refused
 * (SopsError SOPS_BAD_PATH), neither followed nor replaced; the check is repeated right before the rename.
 */
export async function writeFileAtomic0600(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  await refuseLink(path);
  const fh = await open(tmp, CREATE_NEW, 0o600);
  try {
    try {
      // The umask cannot widen 0600, but a pre-set ACL or odd umask could narrow it oddly: make it exact.
      await fh.chmod(0o600);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await refuseLink(path);
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
