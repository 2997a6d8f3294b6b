/**
 * @module Plans for the API and the CLI: what deploying a commit of a repository would change, computed in a scratch
 * directory so that planning never touches the live checkout or the running stack. The target commit's tree is
 * exported from the checkout's object store (or fetched into a scratch git dir when missing), its SOPS files are
 * decrypted there by the same worker task as a deploy, the plan compares it with the running containers, and the
 * scratch directory is deleted afterwards, always. Also the per-install HMAC key of the content labels.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RepoConfig } from '../config/schema.ts';
import type { PlanOutcome } from '../http/ports.ts';
import type { RunTask } from '../workers/types.ts';

/** The key file under the data dir: 32 random bytes, hex, mode 0600, created on first use. */
const KEY_FILE = 'plan-hmac.key';

/**
 * The per-install key that env values and decrypted files are HMAC'ed with in the content labels (a label holds no
 * plain hash of a short secret). Created once in the data dir; a lost key only means one recreate of every service.
 */
export async function loadPlanKey(dataPath: string): Promise<string> {
  const file = path.join(dataPath, KEY_FILE);
  const read = async () => (await readFile(file, 'utf8')).trim();
  try {
    const key = await read();
    if (/^[0-9a-f]{64}$/.test(key)) return key;
  } catch {
    // missing: created below
  }
  await mkdir(dataPath, { recursive: true });
  try {
    await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch {
    // another process created it first, or it holds something else: rewritten only when unreadable as a key
    const key = await read().catch(() => '');
    if (/^[0-9a-f]{64}$/.test(key)) return key;
    await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  }
  return read();
}

/** Which failure codes are the client's problem (409) rather than a remote or engine failure (502). */
const CONFLICT_CODES = new Set([
  'GIT_COMMIT_NOT_FOUND',
  'GIT_BRANCH_NOT_FOUND',
  'COMPOSE_CONFIG_FAILED',
  'COMPOSE_BAD_PATH',
]);
const CONFLICT_PREFIX = /^SOPS_/;

export interface PlannerDeps {
  runTask: RunTask;
  repoConfig(key: string): RepoConfig | undefined;
  secrets: { ageKeyFile?: string; ageKey?: string };
  hmacKey: string;
  /** Parent of the scratch directories (private, under the data dir). */
  scratchRoot: string;
}

/** `plan(key, {commit})`: the plan of `commit` (default: the remote head of the branch) against the running stack. */
export function createPlanner(deps: PlannerDeps): {
  plan(key: string, opts: { commit?: string }): Promise<PlanOutcome>;
} {
  const fail = (r: { code: string; message: string }): PlanOutcome => ({
    ok: false,
    status: CONFLICT_CODES.has(r.code) || CONFLICT_PREFIX.test(r.code) ? 409 : 502,
    code: r.code,
    message: r.message,
  });
  return {
    async plan(key, opts) {
      const repo = deps.repoConfig(key);
      if (!repo) return { ok: false, status: 404, code: 'NOT_FOUND', message: `repository ${key} is not active` };
      let commit = opts.commit;
      if (!commit) {
        const head = await deps.runTask('git-check', {
          url: repo.url,
          branch: repo.branch,
          token: repo.token,
          timeoutMs: repo.timeouts.git * 1000,
        });
        if (!head.ok) return fail(head);
        commit = head.commit;
      }
      await mkdir(deps.scratchRoot, { recursive: true, mode: 0o700 });
      const scratch = await mkdtemp(path.join(deps.scratchRoot, 'plan-'));
      try {
        const root = path.join(scratch, 'tree');
        const exported = await deps.runTask('plan', {
          step: 'export',
          checkoutDir: repo.localPath,
          commit,
          dir: root,
          url: repo.url,
          branch: repo.branch,
          shallow: repo.shallow,
          token: repo.token,
          timeoutMs: repo.timeouts.git * 1000,
        });
        if (!exported.ok) return fail(exported);
        const cwd = path.resolve(root, repo.path);
        let envFile: string | undefined;
        let secretFiles: string[] = [];
        if (repo.decrypt.length > 0) {
          const d = await deps.runTask('sops-decrypt', {
            baseDir: cwd,
            rootDir: root,
            files: repo.decrypt,
            ageKeyFile: deps.secrets.ageKeyFile,
            ageKey: deps.secrets.ageKey,
            timeoutMs: repo.timeouts.decrypt * 1000,
            owned: [],
            ...(repo.build ? { envFileDir: path.join(scratch, 'env') } : {}),
          });
          if (!d.ok) return fail(d);
          envFile = d.envFile;
          secretFiles = d.written;
        }
        const r = await deps.runTask('plan', {
          step: 'plan',
          cwd,
          rootDir: root,
          liveRoot: repo.localPath,
          allFiles: true,
          secretFiles,
          project: repo.composeProject,
          files: repo.composeFiles,
          ...(envFile !== undefined ? { envFile } : {}),
          dockerHost: repo.dockerHost,
          removeOrphans: repo.removeOrphans,
          hmacKey: deps.hmacKey,
          timeoutMs: repo.timeouts.apply * 1000,
        });
        if (!r.ok) return fail(r);
        return {
          ok: true,
          plan: { commit: exported.commit ?? commit, services: r.services ?? [], noop: r.noop === true },
        };
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },
  };
}
