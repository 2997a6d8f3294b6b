/**
 * @module The setup every git-sync suite shares: inside a `describe`, a real git server and a temporary folder
 * created before the suite and removed after it, with the {@link syncFixture} builders over them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { startGitServer, syncFixture, type GitServer } from './git-server.ts';

/** Call inside `describe`: `server` and `tmp` are ready in the suite's tests and gone after them. */
export function syncSuite(tmpPrefix: string): ReturnType<typeof syncFixture> & {
  readonly server: GitServer;
  readonly tmp: string;
} {
  let server: GitServer | undefined;
  let tmp = '';
  before(async () => {
    server = await startGitServer();
    tmp = await mkdtemp(path.join(os.tmpdir(), tmpPrefix));
  });
  after(async () => {
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  const fx = syncFixture(
    () => server as GitServer,
    () => tmp,
  );
  return {
    ...fx,
    get server() {
      return server as GitServer;
    },
    get tmp() {
      return tmp;
    },
  };
}
