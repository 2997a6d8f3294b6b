/**
 * @module Bench: what one repository costs in memory. In one process the real daemon (test/helpers/daemon.ts, as
 * bench/scale.ts) is started on N repositories, every actor is spawned, GC is forced and heapUsed, external,
 * arrayBuffers and RSS are read; N = 0 (the floor: the daemon with no repository, same process) comes first. MB per
 * repository = (figure at N − floor) / N. Nothing is checked while measuring: the daemon starts with checkOnStart off
 * and the repositories poll every hour, so each actor sits idle as between two checks (their URLs point at a closed
 * port: a check, if one ran, would fail at once and deploy nothing).
 *
 * At BENCH_MEMORY_SNAPSHOT repositories (default 1000) a V8 heap snapshot is taken and compared with the floor's:
 * the objects added per repository, grouped by constructor (closures by function name), by self size. Self size, not
 * retained size: the groups add up to the heap's growth, each byte counted once.
 *
 * Env: BENCH_MEMORY_REPOS=1000,10000  BENCH_MEMORY_SNAPSHOT=1000 (0 = none)  BENCH_MEMORY_TOP=25 (rows of the table)
 * Run: npx tsx bench/memory.ts   (re-runs itself with --expose-gc) → markdown on stdout and in bench/results/memory.md
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { startTestDaemon } from '../test/helpers/daemon.ts';
import { MB, envNumber, envNumbers, fmt, machineLine, table, writeResult, loadAverage } from './lib.ts';

if (typeof global.gc !== 'function') {
  // GC has to be forced between the figures: run again with it exposed (same arguments, same environment).
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}

const SIZES = envNumbers('BENCH_MEMORY_REPOS', [1000, 10000]);
const SNAPSHOT_AT = envNumber('BENCH_MEMORY_SNAPSHOT', 1000);
const TOP = envNumber('BENCH_MEMORY_TOP', 25);
const REPOS_PER_FILE = 1000;

interface Figures {
  repos: number;
  heapUsed: number;
  /** The V8 heap's committed size: what GC kept after the boot's peak (part of RSS). */
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  spawnS: number;
}

/** One project file of repositories `from` to `to - 1`, polled hourly, at a closed port. */
function projectYaml(from: number, to: number): string {
  const n = Math.floor(from / REPOS_PER_FILE);
  const lines = [`project: ${n === 0 ? 'mem' : `mem-${n + 1}`}`, 'repositories:'];
  for (let i = from; i < to; i++)
    lines.push(
      `  r${i}:`,
      `    url: http://127.0.0.1:9/r${i}.git`,
      '    branch: main',
      '    check_interval: 3600',
      '    pull: never',
    );
  return `${lines.join('\n')}\n`;
}

/** Full GCs until the heap stops shrinking (a finaliser may free more on the next pass). */
async function settle(): Promise<void> {
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 6; i++) {
    global.gc?.();
    await new Promise((r) => setImmediate(r));
    const used = process.memoryUsage().heapUsed;
    if (last - used < 64 * 1024) return;
    last = used;
  }
}

/** Starts the daemon on `count` repositories, waits for every actor, measures; `snapshot`: writes a heap snapshot. */
async function measure(count: number, snapshot: string | null): Promise<Figures> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-mem-'));
  const configDir = path.join(root, 'config');
  const dataDir = path.join(root, 'data');
  await mkdir(configDir, { recursive: true });
  try {
    for (let from = 0; from < count; from += REPOS_PER_FILE)
      await writeFile(
        path.join(configDir, from === 0 ? 'mem.yaml' : `mem-${from / REPOS_PER_FILE + 1}.yaml`),
        projectYaml(from, Math.min(count, from + REPOS_PER_FILE)),
      );
    const t0 = performance.now();
    const daemon = await startTestDaemon({
      dirs: { configDir, dataDir },
      env: { SHIPARR_LOG_LEVEL: 'silent', SHIPARR_WORKERS: '2' },
      daemon: { checkOnStart: false },
    });
    try {
      await daemon.supervisor.whenBooted();
      const spawnS = (performance.now() - t0) / 1000;
      if (daemon.supervisor.list().length !== count)
        throw new Error(`${daemon.supervisor.list().length} repositories running, expected ${count}`);
      await settle();
      const m = process.memoryUsage();
      if (snapshot) v8.writeHeapSnapshot(snapshot);
      const f = {
        repos: count,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
        rss: m.rss,
        spawnS,
      };
      console.error(`${count} repositories: ${JSON.stringify(f)} (load ${os.loadavg()[0]?.toFixed(1)})`);
      return f;
    } finally {
      await daemon.dispose();
      await settle();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

type Groups = Map<string, { count: number; size: number }>;

/** Self size and count of a heap snapshot's nodes, grouped by constructor (objects) or function name (closures). */
async function groups(file: string): Promise<Groups> {
  const snap = JSON.parse(await readFile(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const out: Groups = new Map();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + iType] as number] as string;
    const name = snap.strings[snap.nodes[i + iName] as number] ?? '';
    const key =
      type === 'object' || type === 'native'
        ? name.slice(0, 60)
        : type === 'closure'
          ? `${name || '(anonymous)'}()`
          : type === 'hidden' || type === 'array' || type === 'code'
            ? `(${type}) ${name.slice(0, 40)}`
            : `(${type})`;
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += snap.nodes[i + iSize] as number;
    out.set(key, g);
  }
  return out;
}

/** The groups that grew from `floor` to `at`, per repository, largest first. */
function perRepo(floor: Groups, at: Groups, repos: number): { key: string; count: number; bytes: number }[] {
  return [...at.entries()]
    .map(([key, g]) => {
      const f = floor.get(key) ?? { count: 0, size: 0 };
      return { key, count: (g.count - f.count) / repos, bytes: (g.size - f.size) / repos };
    })
    .filter((r) => r.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes);
}

const scratch = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-mem-snap-'));
try {
  const floorSnap = SNAPSHOT_AT > 0 ? path.join(scratch, 'floor.heapsnapshot') : null;
  // Warm-up: the first daemon of the process loads modules and JIT state every later one shares; its heap snapshot is
  // the floor's (writing a snapshot leaves RSS higher: done before the floor's figures, it is part of the floor).
  await measure(0, floorSnap);
  const floor = await measure(0, null);
  const rows: Figures[] = [];
  let top: ReturnType<typeof perRepo> = [];
  for (const n of SIZES) {
    const snap = n === SNAPSHOT_AT && floorSnap ? path.join(scratch, `n${n}.heapsnapshot`) : null;
    rows.push(await measure(n, snap));
    if (snap && floorSnap) {
      top = perRepo(await groups(floorSnap), await groups(snap), n);
      await rm(snap, { force: true });
    }
  }
  const per = (r: Figures, k: keyof Figures) => ((r[k] - floor[k]) / r.repos / 1024 ** 2) * 1024;
  const md = [
    '# Memory per repository',
    '',
    `Run ${new Date().toISOString()} with \`npx tsx bench/memory.ts\`. Machine: ${await machineLine()}.`,
    'The daemon on N idle repositories (every actor spawned, no check running), after forced GC; the floor is the',
    'daemon with no repository, measured first in the same process.',
    '',
    table(
      [
        'Repos',
        'heapUsed (MB)',
        'heapTotal (MB)',
        'external (MB)',
        'arrayBuffers (MB)',
        'RSS (MB)',
        'heap KB / repo',
        'RSS KB / repo',
        'Start → all spawned (s)',
      ],
      [floor, ...rows].map((r) => [
        r.repos === 0 ? '0 (floor)' : r.repos,
        fmt(MB(r.heapUsed), 1),
        fmt(MB(r.heapTotal), 1),
        fmt(MB(r.external), 1),
        fmt(MB(r.arrayBuffers), 1),
        fmt(MB(r.rss), 0),
        r.repos === 0 ? '–' : fmt(per(r, 'heapUsed'), 1),
        r.repos === 0 ? '–' : fmt(per(r, 'rss'), 1),
        fmt(r.spawnS, 1),
      ]),
    ),
    '',
    ...(top.length
      ? [
          `Heap growth per repository at ${SNAPSHOT_AT} repositories (heap snapshot minus the floor's, by constructor;`,
          `closures by function name; self size): total ${fmt(top.reduce((s, r) => s + r.bytes, 0) / 1024, 1)} KB.`,
          '',
          table(
            ['Constructor / kind', 'Objects / repo', 'Bytes / repo'],
            top.slice(0, TOP).map((r) => [r.key.replace(/\|/g, '\\|'), fmt(r.count, 1), fmt(r.bytes, 0)]),
          ),
          '',
        ]
      : []),
    `Load average ${loadAverage()} at the end on ${os.cpus().length} CPUs (shared host).`,
    '',
  ].join('\n');
  console.log(md);
  console.error(`written to ${path.relative(process.cwd(), await writeResult('memory', md))}`);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
