/**
 * @module Worker task `sops-decrypt`: decrypts a repo's SOPS files in-process (pure TS age + sops) and writes the
 * plaintext with mode 0600 where compose reads it.
 *
 *   main thread ──DecryptInput──▶ worker: load identities → decrypt every file in memory → write all atomically
 *        ▲                                   │ TaskResult<DecryptOutput> (paths only, never plaintext)
 *        └───────────────────────────────────┘
 * All files are decrypted before any is written, so a bad file (wrong key, MAC mismatch) leaves no partial output.
 * An output path that already holds a file Shiparr did not write (a user's own `.env`, a file git tracks, a
 * symlink) fails the task before anything is written: such a file is never overwritten, so never removed later.
 */
import { chmod, lstat, mkdir, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SopsError } from '../../secrets/errors.ts';
import { writeFileAtomic0600 } from '../../secrets/fs.ts';
import { loadAgeIdentities } from '../../secrets/keys.ts';
import { decryptSopsFile, inferFormat, type SopsFormat } from '../../secrets/sops.ts';
import type { TaskResult } from '../../lib/task-result.ts';
import type { PlaintextFile } from '../../domain/types.ts';
import type { DecryptInput, DecryptOutput } from '../types.ts';
import { fingerprint, sameFile } from '../plaintext.ts';

function inside(base: string, target: string): boolean {
  const rel = relative(base, target);
  return rel === '' ? false : !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/** Where the task may read and write: the compose directory (paths are relative to it) and the checkout around it. */
interface Roots {
  baseDir: string;
  /** The checkout root as configured, and its real path (both sides of every check are real paths). */
  root: string;
  realRoot: string;
}

/**
 * Resolves `p` under `baseDir`, refusing absolute paths and escapes from the checkout, lexically and through
 * symlinked directories. The directory is returned by its real path, the file name as written (not resolved).
 */
async function resolveInside(r: Roots, p: string, what: string): Promise<string> {
  if (isAbsolute(p))
    throw new SopsError('SOPS_BAD_PATH', `${what} path must be relative to the compose directory: ${p}`);
  const abs = resolve(r.baseDir, p);
  if (!inside(r.root, abs)) throw new SopsError('SOPS_BAD_PATH', `${what} ${p}: path escapes the checkout`);
  // The checkout is untrusted content: a symlinked directory could point anywhere on the host.
  let realParent: string;
  try {
    realParent = await realpath(dirname(abs));
  } catch {
    throw new SopsError('SOPS_BAD_PATH', `directory of ${what} ${p} does not exist`);
  }
  if (realParent !== r.realRoot && !inside(r.realRoot, realParent)) {
    throw new SopsError('SOPS_BAD_PATH', `${what} ${p}: path escapes the checkout through a symlink`);
  }
  return join(realParent, basename(abs));
}

/** An input must be a regular file itself: a symlink (even to a file inside the checkout) is refused, not followed. */
async function checkInput(path: string, p: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (st?.isSymbolicLink())
    throw new SopsError('SOPS_BAD_PATH', `file ${p} is a symlink; SOPS files must be regular files in the checkout`);
}

/** An existing output must be a regular file Shiparr may replace: a symlink or a directory there is refused. */
async function checkOutput(path: string, p: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (st?.isSymbolicLink())
    throw new SopsError('SOPS_BAD_PATH', `output ${p} is an existing symlink; it is not followed or replaced`);
  if (st && !st.isFile()) throw new SopsError('SOPS_BAD_PATH', `output ${p} exists and is not a regular file`);
}

/** Default output: dotenv → `.env` in the compose directory; others → the file name without its `.enc` part. */
function defaultOutput(file: string, format: string): string {
  if (format === 'dotenv') return '.env';
  const name = basename(file);
  const parts = name.split('.');
  const idx = parts.lastIndexOf('enc');
  if (idx < 0)
    throw new SopsError('SOPS_BAD_PATH', `cannot derive a plaintext name for ${file} (no ".enc" in it); set "output"`);
  parts.splice(idx, 1);
  const out = parts.join('.');
  if (out === '' || out === '.')
    throw new SopsError('SOPS_BAD_PATH', `cannot derive a plaintext name for ${file}; set "output"`);
  return join(dirname(file), out);
}

/** `<dir>/.env` in Shiparr's private directory (created 0700; must be absolute). */
async function privateEnvFile(dir: string): Promise<string> {
  if (!isAbsolute(dir)) throw new SopsError('SOPS_BAD_PATH', `private env file directory must be absolute: ${dir}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SopsError('SOPS_WRITE_FAILED', `cannot create private directory ${dir} (${reason})`);
  }
  return join(resolve(dir), '.env');
}

/** An output path holds a file Shiparr did not write (task code SOPS_OUTPUT_EXISTS). */
class OutputExistsError extends Error {
  readonly code = 'SOPS_OUTPUT_EXISTS';
}

/**
 * Fails when `output` exists and is not a plaintext file Shiparr wrote (listed in `owned`, identical on disk).
 * Nothing is written before every output has passed this check.
 */
async function assertOutputFree(output: string, file: string, owned: readonly PlaintextFile[]): Promise<void> {
  try {
    await lstat(output);
  } catch {
    return;
  }
  const now = await fingerprint(output);
  if (now && owned.some((o) => sameFile(o, now))) return;
  const what = now ? 'a file Shiparr did not write (your own, or one tracked by git)' : 'not a regular file';
  throw new OutputExistsError(
    `plaintext output ${output} of ${file} already exists and is ${what}; Shiparr does not overwrite or delete it: ` +
      `set "output:" for ${file} to another path, or move the existing file away`,
  );
}

let unsettled = 0;

/**
 * Decryptions started in this thread whose work has not settled yet, a timed-out one still finishing in the
 * background included (read-only; lets a test observe that such work is over before it checks what was written).
 */
export const unsettledDecryptions = (): number => unsettled;

/** Decrypts `input.files` and writes them (0600, atomic). Expected failures are returned, never thrown. */
export default async function sopsDecrypt(input: DecryptInput): Promise<TaskResult<DecryptOutput>> {
  const started = performance.now();
  const deadline = Date.now() + input.timeoutMs;
  const fail = (code: string, message: string): TaskResult<DecryptOutput> => ({
    ok: false,
    durationMs: performance.now() - started,
    code,
    message,
    transient: false,
  });
  const checkTime = (): void => {
    if (Date.now() > deadline) throw new SopsError('SOPS_TIMEOUT', `decryption exceeded ${input.timeoutMs} ms`);
  };
  let timer: NodeJS.Timeout | undefined;
  const work = async (): Promise<TaskResult<DecryptOutput>> => {
    const baseDir = resolve(input.baseDir);
    const root = resolve(input.rootDir ?? input.baseDir);
    let realRoot: string;
    try {
      await realpath(baseDir);
      realRoot = await realpath(root);
    } catch {
      throw new SopsError('SOPS_BAD_PATH', `compose directory ${input.baseDir} does not exist`);
    }
    const roots: Roots = { baseDir, root, realRoot };
    const keyring = await loadAgeIdentities({ keyFile: input.ageKeyFile, key: input.ageKey });
    // Every path is checked before anything is decrypted: a refused file leaves nothing decrypted or written.
    const targets: { file: string; output: string; format: SopsFormat }[] = [];
    for (const f of input.files) {
      const file = await resolveInside(roots, f.file, 'file');
      await checkInput(file, f.file);
      const format = f.format ?? inferFormat(f.file);
      const outName = f.output ?? defaultOutput(f.file, format);
      const output =
        input.envFileDir !== undefined && f.output === undefined && format === 'dotenv'
          ? await privateEnvFile(input.envFileDir)
          : await resolveInside(roots, outName, 'output');
      await checkOutput(output, outName);
      if (output === file)
        throw new SopsError('SOPS_BAD_PATH', `output of ${f.file} would overwrite the encrypted file`);
      if (targets.some((p) => p.output === output))
        throw new SopsError('SOPS_BAD_PATH', `two files decrypt to ${output}`);
      await assertOutputFree(output, f.file, input.owned ?? []);
      targets.push({ file, output, format });
    }
    const plans: { output: string; data: Buffer }[] = [];
    for (const t of targets) {
      checkTime();
      const data = await decryptSopsFile(t.file, { format: t.format, identities: keyring, noFollow: true });
      plans.push({ output: t.output, data });
    }
    const written: string[] = [];
    const files: PlaintextFile[] = [];
    try {
      for (const plan of plans) {
        checkTime();
        try {
          await writeFileAtomic0600(plan.output, plan.data);
        } catch (err) {
          if (err instanceof SopsError) throw err;
          const reason = (err as NodeJS.ErrnoException).code ?? 'write error';
          throw new SopsError('SOPS_WRITE_FAILED', `cannot write ${plan.output} (${reason})`);
        }
        written.push(plan.output);
        const id = await fingerprint(plan.output);
        if (id) files.push(id);
      }
    } finally {
      for (const plan of plans) plan.data.fill(0);
    }
    const envFile =
      input.envFileDir !== undefined ? written.find((w) => dirname(w) === resolve(input.envFileDir!)) : undefined;
    return {
      ok: true,
      durationMs: performance.now() - started,
      written,
      files,
      ...(envFile !== undefined ? { envFile } : {}),
    };
  };
  const timeout = new Promise<TaskResult<DecryptOutput>>((resolveTimeout) => {
    timer = setTimeout(
      () => resolveTimeout(fail('SOPS_TIMEOUT', `decryption exceeded ${input.timeoutMs} ms`)),
      Math.max(0, input.timeoutMs),
    );
  });
  unsettled += 1;
  const working = work();
  const settle = (): void => {
    unsettled -= 1;
  };
  working.then(settle, settle);
  try {
    return await Promise.race([
      working.catch((err: unknown) => {
        if (err instanceof SopsError || err instanceof OutputExistsError) return fail(err.code, err.message);
        throw err;
      }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
