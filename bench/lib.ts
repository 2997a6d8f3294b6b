/**
 * @module Shared pieces of the benchmark scripts: statistics, markdown tables, result files, machine facts,
 * CPU accounting (own process + waited-for children), a git fast-import history generator and an in-process
 * CPU profiler that summarises self time per function.
 */
import { isolatedGitEnv } from '../test/helpers/git-server.ts';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Directory holding this file (bench/). */
export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Reads a number from the environment, falling back to `def` when unset or not a finite number. */
export function envNumber(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  return Number.isFinite(n) ? n : def;
}

/** Reads a comma-separated list of numbers from the environment. */
export function envNumbers(name: string, def: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const xs = raw
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isFinite(n) && n > 0);
  return xs.length ? xs : def;
}

/** The p-th percentile (0..100) by nearest rank; NaN for an empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank] as number;
}

/** Median (mean of the two middle values for even counts); NaN for an empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Fixed-decimals formatting that prints "–" for NaN/undefined. */
export function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

/** `a / b` as "1.23×" ("–" when undefined). */
export function ratio(a: number, b: number, digits = 2): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(digits)}×` : '–';
}

/** A GitHub-flavoured markdown table; columns whose header ends with a space-free unit are right-aligned when numeric. */
export function table(header: string[], rows: (string | number)[][]): string {
  const align = header.map((_, i) =>
    rows.every((r) => /^[-+]?[\d.,]+(×|%| ms| MB| s)?$|^–$/.test(String(r[i] ?? ''))) ? '---:' : '---',
  );
  return [
    `| ${header.join(' | ')} |`,
    `|${align.join('|')}|`,
    ...rows.map((r) => `| ${r.map(String).join(' | ')} |`),
  ].join('\n');
}

/** Writes `bench/results/<name>.md` and returns its path. */
export async function writeResult(name: string, markdown: string): Promise<string> {
  const dir = path.join(BENCH_DIR, 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.md`);
  await writeFile(file, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  return file;
}

/** One line describing the machine: cores, RAM, CPU model, node, git and docker versions. */
export async function machineLine(): Promise<string> {
  const version = async (cmd: string, args: string[]): Promise<string> => {
    try {
      return (await execFileAsync(cmd, args, { timeout: 15_000 })).stdout.trim();
    } catch {
      return 'n/a';
    }
  };
  const cpus = os.cpus();
  const gitV = (await version('git', ['--version'])).replace(/^git version /, '');
  const dockerV = await version('docker', ['version', '--format', '{{.Server.Version}}']);
  const composeV = await version('docker', ['compose', 'version', '--short']);
  return `${cpus.length} CPU (${cpus[0]?.model.trim() ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, git ${gitV}, Docker engine ${dockerV}, compose ${composeV}`;
}

let clockTicks: number | undefined;

/** CPU ms of this process's terminated, waited-for descendants (cutime + cstime from /proc/self/stat). */
export async function childrenCpuMs(): Promise<number> {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number((await execFileAsync('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm)", index 0 is field 3 (state): cutime is field 16, cstime field 17.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks;
}

/** CPU ms used by this process so far (all threads, user + system). */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export const MB = (bytes: number): number => bytes / 1024 / 1024;

/** The load averages as `1.2 / 3.4 / 5.6` (1, 5 and 15 minutes), for the note every result file ends with. */
export const loadAverage = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');

/** An isolated environment for git CLI runs (no user/system config can change what is measured). */
export const gitEnv = isolatedGitEnv;

/** Runs git and resolves to trimmed stdout; rejects with stderr on failure. */
export async function git(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await execFileAsync(
    'git',
    ['-c', 'user.name=Bench', '-c', 'user.email=bench@shiparr.invalid', '-c', 'commit.gpgsign=false', ...args],
    {
      cwd,
      env,
      maxBuffer: 64 << 20,
    },
  );
  return stdout.trim();
}

/**
 * Fills the bare repository `bare` (created here) with a linear history on `main` using `git fast-import`:
 * the first commit adds `files` files, each later one rewrites three of them. Packs it with `git gc`.
 */
export async function generateHistory(
  bare: string,
  opts: { files: number; commits: number; env: NodeJS.ProcessEnv },
): Promise<void> {
  await git(path.dirname(bare), ['init', '--quiet', '--bare', '--initial-branch=main', bare], opts.env);
  await git(bare, ['config', 'uploadpack.allowReachableSHA1InWant', 'true'], opts.env);
  await new Promise<void>((resolve, reject) => {
    const p = spawn('git', ['fast-import', '--quiet'], {
      cwd: bare,
      env: opts.env,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}`))));
    const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
    // Written commit by commit so a big history never sits in memory as one string.
    for (let c = 1; c <= opts.commits; c++) {
      const parts = [
        `commit refs/heads/main\ncommitter Bench <bench@shiparr.invalid> ${1_700_000_000 + c * 60} +0000\n${data(`commit ${c}`)}`,
      ];
      const touched =
        c === 1
          ? Array.from({ length: opts.files }, (_, i) => i)
          : [c % opts.files, (c * 7) % opts.files, (c * 13) % opts.files];
      for (const i of touched) {
        const body = `# file ${i}, revision ${c}\n${'lorem ipsum dolor sit amet '.repeat(10 + (i % 40))}\n`;
        parts.push(`M 100644 inline dir${i % 20}/sub${i % 7}/file-${i}.txt\n${data(body)}`);
      }
      parts.push('\n');
      p.stdin.write(parts.join(''));
    }
    p.stdin.end();
  });
  await git(bare, ['gc', '--quiet'], opts.env);
}

/** One row of a CPU profile summary. */
export interface ProfileRow {
  fn: string;
  where: string;
  selfMs: number;
  pct: number;
}

/**
 * Runs `fn` under the V8 CPU profiler of this thread (what `node --cpu-prof` records) and returns the functions with the
 * most self time, plus the self time grouped by package/file ("where the time goes").
 */
export async function profile(
  fn: () => Promise<unknown>,
  top = 15,
): Promise<{ functions: ProfileRow[]; byModule: ProfileRow[]; totalMs: number }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  // Stop even when fn fails, so the session never keeps sampling; rethrow afterwards.
  let failure: unknown = null;
  try {
    await fn();
  } catch (err) {
    failure = err ?? new Error('profiled function failed');
  }
  const { profile: prof } = await session.post('Profiler.stop');
  session.disconnect();
  if (failure !== null) throw failure;
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++)
    self.set(samples[i] as number, (self.get(samples[i] as number) ?? 0) + (deltas[i] ?? 0) / 1000);
  const totalMs = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, ProfileRow>();
  const byMod = new Map<string, ProfileRow>();
  const short = (url: string): string => {
    if (!url) return '(native/V8)';
    const nm = url.lastIndexOf('node_modules/');
    if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
    const src = url.indexOf('/src/');
    if (src >= 0) return url.slice(src + 1);
    return url.replace(/^file:\/\//, '');
  };
  for (const [id, ms] of self) {
    const n = nodes.get(id);
    if (!n) continue;
    const cf = n.callFrame;
    const where = short(cf.url);
    const fnName = cf.functionName || '(anonymous)';
    const key = `${fnName}@${where}:${cf.lineNumber + 1}`;
    const row = byFn.get(key) ?? { fn: fnName, where: `${where}:${cf.lineNumber + 1}`, selfMs: 0, pct: 0 };
    row.selfMs += ms;
    byFn.set(key, row);
    const mod = where.startsWith('(')
      ? `${where} ${fnName}`
      : where
          .split('/')
          .slice(0, where.startsWith('@') ? 3 : 2)
          .join('/');
    const m = byMod.get(mod) ?? { fn: '', where: mod, selfMs: 0, pct: 0 };
    m.selfMs += ms;
    byMod.set(mod, m);
  }
  const finish = (rows: Iterable<ProfileRow>) =>
    [...rows]
      .map((r) => ({ ...r, pct: totalMs ? (100 * r.selfMs) / totalMs : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top);
  return { functions: finish(byFn.values()), byModule: finish(byMod.values()), totalMs };
}
