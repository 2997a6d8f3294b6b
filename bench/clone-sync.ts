/**
 * @module Bench: Shiparr's `git-sync` worker task (isomorphic-git, called directly in this thread) against the git CLI
 * on a 2,000-file, 500-commit repository served by the local smart-HTTP git server:
 *   first clone, shallow   — git-sync {shallow:true}  vs `git clone --depth 1 --single-branch --no-tags`
 *   first clone, full      — git-sync {shallow:false} vs `git clone --single-branch --no-tags`
 *   incremental (1 commit) — git-sync on the existing checkout vs `git fetch origin main` + `git checkout -f FETCH_HEAD`
 * Each case runs BENCH_CLONE_ITERATIONS times (default 3), median reported. When the first clone is more than 3× slower
 * than the CLI, one more clone of that kind runs under the V8 CPU profiler and the self time is summarised.
 *
 * Env: BENCH_CLONE_FILES=2000 BENCH_CLONE_COMMITS=500 BENCH_CLONE_ITERATIONS=3
 * Run: npx tsx bench/clone-sync.ts   → markdown on stdout and in bench/results/clone-sync.md
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import gitSync from '../src/workers/tasks/git-sync.ts';
import type { SyncOptions } from '../src/git/sync.ts';
import { startGitServer } from '../test/helpers/git-server.ts';
import {
  envNumber,
  fmt,
  generateHistory,
  git,
  gitEnv,
  machineLine,
  median,
  profile,
  ratio,
  table,
  writeResult,
  type ProfileRow,
} from './lib.ts';

const FILES = envNumber('BENCH_CLONE_FILES', 2000);
const COMMITS = envNumber('BENCH_CLONE_COMMITS', 500);
const ITERATIONS = envNumber('BENCH_CLONE_ITERATIONS', 3);
const REPO = 'big';

const startedAt = new Date().toISOString();
const machine = await machineLine();
const server = await startGitServer();
const tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-clone-'));
const home = path.join(tmp, 'home');
const env = gitEnv(home);
let seq = 0;
const freshDir = () => path.join(tmp, `d${++seq}`);

const time = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

const sync = async (dir: string, shallow: boolean): Promise<{ commit: string; cloned: boolean }> => {
  const input: SyncOptions = { url: server.repoUrl(REPO), branch: 'main', dir, shallow, timeoutMs: 600_000 };
  const r = await gitSync(input);
  if (!r.ok) throw new Error(`git-sync failed: ${r.code}: ${r.message}`);
  return r;
};

interface Case {
  name: string;
  shiparr: number[];
  cli: number[];
}

try {
  await mkdir(home, { recursive: true });
  const bare = path.join(server.root, `${REPO}.git`);
  const g0 = performance.now();
  await generateHistory(bare, { files: FILES, commits: COMMITS, env });
  console.error(`generated ${FILES} files × ${COMMITS} commits in ${fmt((performance.now() - g0) / 1000)} s`);
  const packBytes = Number((await git(bare, ['count-objects', '-v'], env)).match(/size-pack: (\d+)/)?.[1] ?? 0) * 1024;

  // A work clone (local filesystem, outside the measurement) to push the "one new commit" of incremental syncs.
  const work = path.join(tmp, 'work');
  await git(tmp, ['clone', '--quiet', bare, work], env);
  let n = 0;
  const pushOne = async (): Promise<string> => {
    n++;
    await writeFile(path.join(work, 'dir0', 'sub0', 'file-0.txt'), `incremental change ${n}\n`);
    await git(work, ['commit', '--quiet', '-am', `incremental ${n}`], env);
    await git(work, ['push', '--quiet', 'origin', 'HEAD:refs/heads/main'], env);
    return git(work, ['rev-parse', 'HEAD'], env);
  };

  const cases: Case[] = [];
  const cliClone = (dir: string, shallow: boolean) =>
    git(
      tmp,
      [
        'clone',
        '--quiet',
        '--single-branch',
        '--no-tags',
        '--branch',
        'main',
        ...(shallow ? ['--depth', '1'] : []),
        server.repoUrl(REPO),
        dir,
      ],
      env,
    );

  // Warm the server's page cache and both code paths once (not measured).
  await sync(freshDir(), true);
  await cliClone(freshDir(), true);

  for (const shallow of [true, false]) {
    const label = shallow ? 'shallow' : 'full';
    const first: Case = { name: `first clone, ${label}`, shiparr: [], cli: [] };
    const incr: Case = { name: `incremental sync (1 new commit), ${label}`, shiparr: [], cli: [] };
    for (let i = 0; i < ITERATIONS; i++) {
      const sd = freshDir();
      const cd = freshDir();
      first.shiparr.push(
        await time(async () => {
          const r = await sync(sd, shallow);
          if (!r.cloned) throw new Error('expected a fresh clone');
        }),
      );
      first.cli.push(await time(() => cliClone(cd, shallow)));
      const sha = await pushOne();
      incr.shiparr.push(
        await time(async () => {
          const r = await sync(sd, shallow);
          if (r.cloned || r.commit !== sha) throw new Error(`incremental sync did not fetch ${sha}`);
        }),
      );
      incr.cli.push(
        await time(async () => {
          await git(cd, ['fetch', '--quiet', '--no-tags', ...(shallow ? ['--depth', '1'] : []), 'origin', 'main'], env);
          await git(cd, ['checkout', '--quiet', '--force', 'FETCH_HEAD'], env);
        }),
      );
      const head = await git(cd, ['rev-parse', 'HEAD'], env);
      if (head !== sha) throw new Error(`git fetch did not reach ${sha}`);
      await rm(sd, { recursive: true, force: true });
      await rm(cd, { recursive: true, force: true });
    }
    cases.push(first, incr);
  }

  const rows = cases.map((c) => [
    c.name,
    fmt(median(c.shiparr), 0),
    fmt(median(c.cli), 0),
    ratio(median(c.shiparr), median(c.cli)),
    c.shiparr.map((x) => x.toFixed(0)).join(', '),
    c.cli.map((x) => x.toFixed(0)).join(', '),
  ]);
  const md: string[] = [
    '# Clone / sync: git-sync task vs git CLI',
    '',
    `Run ${startedAt} with \`npx tsx bench/clone-sync.ts\`. Machine: ${machine}.`,
    `Repository: ${FILES} files, ${COMMITS} commits, pack ${fmt(packBytes / 1024 / 1024, 1)} MiB, served by \`git http-backend\` on 127.0.0.1 (same process as the client; its CPU is spread over the git children).`,
    `git-sync is the worker task's default export called directly in this thread. ${ITERATIONS} iterations per case, medians; one warm-up of each side before.`,
    'CLI equivalents: `git clone --single-branch --no-tags [--depth 1]`; incremental: `git fetch --no-tags [--depth 1] origin main` + `git checkout --force FETCH_HEAD`.',
    '',
    table(['Case', 'Shiparr git-sync (ms)', 'git CLI (ms)', 'Shiparr / CLI', 'Shiparr samples', 'CLI samples'], rows),
    '',
  ];

  // Profile the first clone when it misses the 3× goal.
  const slow = cases.filter((c) => c.name.startsWith('first clone') && median(c.shiparr) > 3 * median(c.cli));
  const profRow = (r: ProfileRow) => [r.fn || r.where, r.fn ? r.where : '', fmt(r.selfMs, 0), fmt(r.pct, 1)];
  for (const c of slow) {
    const shallow = c.name.endsWith('shallow');
    const dir = freshDir();
    const p = await profile(() => sync(dir, shallow));
    md.push(
      `## Profile: ${c.name} (${fmt(p.totalMs, 0)} ms sampled on the main thread)`,
      '',
      `Goal (≤ 3× the CLI) not met: ${ratio(median(c.shiparr), median(c.cli))}. V8 CPU profile (the same data \`node --cpu-prof\` writes), self time:`,
      '',
      table(
        ['Module / file', '', 'Self (ms)', '%'],
        p.byModule.slice(0, 10).map((r) => [r.where, '', fmt(r.selfMs, 0), fmt(r.pct, 1)]),
      ),
      '',
      table(['Function', 'Where', 'Self (ms)', '%'], p.functions.slice(0, 15).map(profRow)),
      '',
    );
    await rm(dir, { recursive: true, force: true });
  }
  if (!slow.length) md.push('Goal (first clone ≤ 3× the CLI): met for both depths.', '');

  const text = md.join('\n');
  console.log(text);
  console.error(`written to ${path.relative(process.cwd(), await writeResult('clone-sync', text))}`);
} finally {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
}
