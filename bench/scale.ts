/**
 * @module Bench: many repositories polled by one daemon. For each repository count (default 100, 300, 1000) the
 * in-process daemon watches that many bare repositories on a local git server at a 30 s interval and the script
 * measures, over a steady-state window: checks/second achieved vs scheduled, event-loop delay p50/p99/max
 * (perf_hooks.monitorEventLoopDelay), RSS and CPU% (process.cpuUsage: every thread, so the worker pool is included).
 *
 * The repositories are copies of one bare repository (`cp -r` inside the server root). The store is seeded before the
 * daemon starts with a finished `success` deployment of the head commit and the repo's configHash, so every check —
 * including the first — finds "unchanged" and nothing is deployed.
 * Baseline, same run: the naive loop of the original Shiparr script, `git ls-remote <url> refs/heads/main` spawned for each repository in
 * turn, for the same window; its CPU includes the git processes it spawned.
 * The git server runs in a child process (this file with `--server`), so its CPU is charged to neither side.
 * Git endpoint: a replay cache in that child, in front of the real server (like test/resilience/scale.test.ts): the
 * first request of each kind is answered by `git http-backend` (CGI), repeats from memory with the identical bytes, so
 * Shiparr still does the whole smart-HTTP exchange, but the fixture (one CGI process per request, ~10–20 req/s on
 * 2 cores) no longer limits the measured check rate. The cache key is method + path + query + Git-Protocol header +
 * body, with the repository name (`/rN.git/`) folded to one name: the repositories are byte-identical copies of r0
 * (checked at start: their advertisements are compared on the real server), so 1000 repositories do not mean 2000
 * cold CGI requests at boot. Concurrent misses for the same key share one upstream request. The baseline uses the
 * same endpoint (its first round warms the cache for git's own protocol-v2 requests).
 * BENCH_SCALE_CACHE=url keys per repository URL (exactly the test's proxy); BENCH_SCALE_CACHE=off talks to the CGI server.
 *
 * Env: BENCH_SCALE_REPOS=100,300,1000  BENCH_SCALE_INTERVAL=30 (s)  BENCH_SCALE_SECONDS=180 (window per count)
 *      BENCH_SCALE_SECONDS_1000=90 (window for counts ≥ 1000)  BENCH_SCALE_BASELINE_SECONDS=30  BENCH_SCALE_WORKERS=2
 * Run: npx tsx bench/scale.ts   → markdown table on stdout and in bench/results/scale.md
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadProjects } from '../src/config/load.ts';
import { Store } from '../src/store/index.ts';
import { startGitServer } from '../test/helpers/git-server.ts';
import { startTestDaemon } from '../test/helpers/daemon.ts';
import {
  BENCH_DIR,
  MB,
  childrenCpuMs,
  envNumber,
  envNumbers,
  fmt,
  machineLine,
  ownCpuMs,
  profile,
  ratio,
  table,
  writeResult,
  type ProfileRow,
  loadAverage,
} from './lib.ts';
import { countDeployments } from '../test/helpers/store-queries.ts';

const exec = promisify(execFile);
const SIZES = envNumbers('BENCH_SCALE_REPOS', [100, 300, 1000]);
const INTERVAL = envNumber('BENCH_SCALE_INTERVAL', 30);
const WINDOW = envNumber('BENCH_SCALE_SECONDS', 180);
const WINDOW_1000 = envNumber('BENCH_SCALE_SECONDS_1000', 90);
const BASELINE_WINDOW = envNumber('BENCH_SCALE_BASELINE_SECONDS', 30);
const WORKERS = envNumber('BENCH_SCALE_WORKERS', 2);
const BOOT_TIMEOUT_S = envNumber('BENCH_SCALE_BOOT_TIMEOUT', 240);
/** After the largest count's window: this many seconds under the main-thread CPU profiler (0 = off). */
const PROFILE_S = envNumber('BENCH_SCALE_PROFILE_SECONDS', 30);
/** `shared` (default): one cache entry per request kind for all copies; `url`: per repository URL; `off`: no cache. */
const CACHE = (process.env.BENCH_SCALE_CACHE ?? 'shared') as 'shared' | 'url' | 'off';
if (!['shared', 'url', 'off'].includes(CACHE))
  throw new Error(`BENCH_SCALE_CACHE must be shared, url or off (got ${CACHE})`);
const ENDPOINT =
  CACHE === 'off'
    ? 'git http-backend (CGI per request)'
    : `replay cache (${CACHE === 'shared' ? 'shared by the copies' : 'per URL'}) → git http-backend`;

type ToServer = { type: 'copies'; count: number } | { type: 'counters' } | { type: 'close' };
type FromServer =
  | { type: 'ready'; baseUrl: string; head: string }
  | { type: 'copies'; count: number }
  | { type: 'counters'; requestCount: number; upstream: number };

// ───────────────────────── server mode (child process) ─────────────────────────

interface Cached {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * The replay cache (same idea as test/resilience/scale.test.ts's proxy): first answer per key from the real server,
 * repeats from memory. Only 200 answers are kept; the repositories never change during the benchmark.
 */
async function startReplayCache(
  target: string,
  mode: 'shared' | 'url',
): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  const cache = new Map<string, Cached>();
  const inflight = new Map<string, Promise<Cached>>();
  let hits = 0;
  const fetchUpstream = async (
    url: string,
    method: string,
    headers: Record<string, string>,
    body: Buffer,
  ): Promise<Cached> => {
    const r = await fetch(`${target}${url}`, {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : body,
    });
    return {
      status: r.status,
      headers: {
        'content-type': r.headers.get('content-type') ?? 'application/octet-stream',
        'cache-control': 'no-cache',
      },
      body: Buffer.from(await r.arrayBuffer()),
    };
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits++;
      const body = Buffer.concat(chunks);
      const url = req.url ?? '/';
      const where = mode === 'shared' ? url.replace(/^\/r\d+\.git\//, '/r*.git/') : url;
      const key = `${req.method} ${where} ${String(req.headers['git-protocol'] ?? '')} ${String(req.headers['content-encoding'] ?? '')} ${body.toString('base64')}`;
      const send = (r: Cached) => res.writeHead(r.status, r.headers).end(r.body);
      const hit = cache.get(key);
      if (hit) return send(hit);
      let pending = inflight.get(key);
      if (!pending) {
        const headers: Record<string, string> = {};
        for (const h of ['content-type', 'git-protocol', 'content-encoding', 'authorization'])
          if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
        pending = fetchUpstream(url, req.method ?? 'GET', headers, body).then((out) => {
          if (out.status === 200) cache.set(key, out);
          return out;
        });
        inflight.set(key, pending);
        void pending.finally(() => inflight.delete(key)).catch(() => undefined);
      }
      pending.then(send, () => res.writeHead(502).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** The shared cache is only valid if the copies answer with the same bytes: compare r0 and rN on the real server. */
async function assertSameAdvertisement(baseUrl: string, a: string, b: string): Promise<void> {
  for (const headers of [{}, { 'git-protocol': 'version=2' }] as Record<string, string>[]) {
    const get = async (r: string) =>
      Buffer.from(
        await (await fetch(`${baseUrl}/${r}.git/info/refs?service=git-upload-pack`, { headers })).arrayBuffer(),
      );
    if (!(await get(a)).equals(await get(b)))
      throw new Error(
        `${a} and ${b} advertise different bytes: the shared replay cache would be wrong (use BENCH_SCALE_CACHE=url)`,
      );
  }
}

async function serverMode(): Promise<void> {
  const server = await startGitServer();
  const head = await server.createRepo('r0', {
    'compose.yaml': 'services:\n  app:\n    image: shiparr-test/none\n    pull_policy: never\n',
  });
  const replay = CACHE === 'off' ? undefined : await startReplayCache(server.baseUrl, CACHE);
  let have = 1;
  const send = (m: FromServer) => process.send?.(m);
  process.on('message', (m: ToServer) => {
    void (async () => {
      if (m.type === 'copies') {
        // Copies of one bare repository are as real to the server as N pushes, and much faster to make. Hard links
        // (`cp -al`, one shell for all): git never rewrites a file in place (it writes a new one and renames it).
        if (have < m.count)
          await exec('sh', ['-c', `for i in $(seq ${have} ${m.count - 1}); do cp -al r0.git r$i.git; done`], {
            cwd: server.root,
          });
        have = Math.max(have, m.count);
        if (CACHE === 'shared' && have > 1) await assertSameAdvertisement(server.baseUrl, 'r0', `r${have - 1}`);
        send({ type: 'copies', count: have });
      } else if (m.type === 'counters') {
        send({
          type: 'counters',
          requestCount: replay ? replay.hits() : server.requestCount,
          upstream: server.requestCount,
        });
      } else {
        await replay?.close();
        await server.close();
        process.exit(0);
      }
    })();
  });
  send({ type: 'ready', baseUrl: replay?.url ?? server.baseUrl, head });
}

// ───────────────────────── client mode ─────────────────────────

interface ServerHandle {
  baseUrl: string;
  head: string;
  ask(m: ToServer): Promise<FromServer>;
  close(): Promise<void>;
}

async function spawnServer(): Promise<ServerHandle> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--server'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: ((m: FromServer) => void)[] = [];
  child.on('message', (m: FromServer) => waiting.shift()?.(m));
  const next = () => new Promise<FromServer>((resolve) => waiting.push(resolve));
  const ready = await next();
  if (ready.type !== 'ready') throw new Error('git server did not start');
  return {
    baseUrl: ready.baseUrl,
    head: ready.head,
    ask: (m) => {
      const p = next();
      child.send(m);
      return p;
    },
    close: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send({ type: 'close' } satisfies ToServer);
      await exited;
    },
  };
}

interface Row {
  repos: number;
  /** Which git endpoint both Shiparr and the baseline talked to (absent in rows of runs before the replay cache). */
  endpoint?: string;
  /** Of gitRequests, how many reached `git http-backend` (cache misses). */
  gitUpstream?: number;
  windowS: number;
  bootS: number;
  /** Repositories whose first check finished before the window started. */
  bootChecked: number;
  scheduled: number;
  achieved: number;
  /**
   * Schedule kept per repository: in-window gaps between two checks of one repository longer than the longest poll
   * delay (interval × 1.1) + LATE_SLACK_S, plus repositories whose last check is that much overdue at the window's end.
   * 0 = every check happened on time (done/scheduled can still be < 1.00×: see the result file's note).
   */
  late?: number;
  /** Longest gap between two checks of one repository in the window, in s (including the overdue time at the end). */
  maxGapS?: number;
  errors: number;
  errorCodes: string;
  changed: number;
  gitRequests: number;
  loop: { p50: number; p99: number; max: number };
  bootLoop: { p99: number; max: number };
  profile?: { functions: ProfileRow[]; byModule: ProfileRow[]; totalMs: number; seconds: number };
  rssStartMb: number;
  rssMaxMb: number;
  heapMb: number;
  cpuPct: number;
  cpuMsPerCheck: number;
  baseline: {
    window: number;
    scheduled: number;
    done: number;
    failed: number;
    cpuPct: number;
    cpuMsPerCheck: number;
    loopP99: number;
  };
}

/** Sampling period of the event-loop monitor; each sample is period + delay, so the period is subtracted. */
const RESOLUTION_MS = 10;
const ms = (h: IntervalHistogram, p: number) => Math.max(0, h.percentile(p) / 1e6 - RESOLUTION_MS);
const maxMs = (h: IntervalHistogram) => Math.max(0, h.max / 1e6 - RESOLUTION_MS);
/** A check may end this much later than the longest poll delay and still count as on time. */
const LATE_SLACK_S = 2;
const sleep = (msec: number) => new Promise<void>((r) => setTimeout(r, msec));

/** Repositories per project file: a file stays under the loader's 1 MiB limit (10,000 repositories need ten files). */
const REPOS_PER_FILE = 1000;

/** One project file of repositories `from` to `to - 1` (the first file is project `scale`, then `scale-2`, …). */
function projectYaml(baseUrl: string, from: number, to: number): string {
  const n = Math.floor(from / REPOS_PER_FILE);
  const lines = [`project: ${n === 0 ? 'scale' : `scale-${n + 1}`}`, 'repositories:'];
  for (let i = from; i < to; i++) {
    lines.push(
      `  r${i}:`,
      `    url: ${baseUrl}/r${i}.git`,
      '    branch: main',
      `    check_interval: ${INTERVAL}`,
      '    pull: never',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the project files for `count` repositories, at most REPOS_PER_FILE per file. */
async function writeProjects(configDir: string, baseUrl: string, count: number): Promise<void> {
  for (let from = 0; from < count; from += REPOS_PER_FILE) {
    const name = from === 0 ? 'scale.yaml' : `scale-${from / REPOS_PER_FILE + 1}.yaml`;
    await writeFile(path.join(configDir, name), projectYaml(baseUrl, from, Math.min(count, from + REPOS_PER_FILE)));
  }
}

/** Seeds the store so every repository's head commit is already deployed with its current configHash. */
async function seed(configDir: string, dataDir: string, head: string): Promise<number> {
  const env = { SHIPARR_CONFIG_PATH: configDir, SHIPARR_DATA_PATH: dataDir };
  const loaded = await loadProjects(configDir, { env: { ...process.env, ...env }, dataPath: dataDir });
  if (loaded.errors.length) throw new Error(`config errors: ${loaded.errors.map((e) => e.message).join('; ')}`);
  await mkdir(dataDir, { recursive: true });
  const store = Store.open(path.join(dataDir, 'shiparr.db'));
  try {
    store.syncConfig(
      loaded.projects.map((p) => ({
        name: p.name,
        description: p.description,
        file: p.file,
        repositories: p.repositories,
      })),
    );
    let n = 0;
    for (const p of loaded.projects) {
      for (const r of p.repositories) {
        const d = store.createDeployment({
          repoKey: r.key,
          trigger: 'boot',
          status: 'running',
          commit: head,
          configHash: r.configHash,
        });
        store.finishDeployment(d.id, { status: 'success', stage: 'notifying' });
        n++;
      }
    }
    return n;
  } finally {
    store.close();
  }
}

async function runShiparr(server: ServerHandle, count: number): Promise<Omit<Row, 'baseline'>> {
  const windowS = count >= 1000 ? Math.min(WINDOW, WINDOW_1000) : WINDOW;
  const root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-scale-'));
  const configDir = path.join(root, 'config');
  const dataDir = path.join(root, 'data');
  await mkdir(configDir, { recursive: true });
  try {
    await writeProjects(configDir, server.baseUrl, count);
    const seeded = await seed(configDir, dataDir, server.head);
    if (seeded !== count) throw new Error(`seeded ${seeded} repositories, expected ${count}`);

    global.gc?.();
    const bootLoop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    bootLoop.enable();
    const bootStart = Date.now();
    const seen = new Set<string>();
    let inWindow = false;
    const lastCheck = new Map<string, number>();
    const lateAfterMs = (INTERVAL * 1.1 + LATE_SLACK_S) * 1000;
    let late = 0;
    let maxGapMs = 0;
    let achieved = 0;
    let errors = 0;
    let changed = 0;
    let bootErrors = 0;
    const errorCodes = new Map<string, number>();
    const daemon = await startTestDaemon({ dirs: { configDir, dataDir }, env: { SHIPARR_WORKERS: String(WORKERS) } });
    const unsubscribe = daemon.supervisor.subscribe((e) => {
      if (e.type !== 'check') return;
      const now = Date.now();
      const prev = lastCheck.get(e.repoKey);
      lastCheck.set(e.repoKey, now);
      if (inWindow && prev !== undefined) {
        maxGapMs = Math.max(maxGapMs, now - prev);
        if (now - prev > lateAfterMs) late++;
      }
      if (!inWindow) {
        seen.add(e.repoKey);
        if (e.result === 'error') bootErrors++;
        return;
      }
      achieved++;
      if (e.result === 'error') {
        errors++;
        const code = daemon.supervisor.get(e.repoKey)?.lastError?.code ?? 'unknown';
        errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
      }
      if (e.result === 'changed') changed++;
    });
    try {
      if (daemon.supervisor.list().length !== count)
        throw new Error(`daemon runs ${daemon.supervisor.list().length} repositories, expected ${count}`);
      // Boot: every repository goes through its first check (the supervisor spreads them over up to 30 s).
      const deadline = Date.now() + BOOT_TIMEOUT_S * 1000;
      while (seen.size < count && Date.now() < deadline) await sleep(100);
      const bootS = (Date.now() - bootStart) / 1000;
      bootLoop.disable();
      const bootChecked = seen.size;
      if (bootChecked < count)
        console.error(
          `warning: only ${bootChecked}/${count} repositories had their first check within ${BOOT_TIMEOUT_S} s; measuring anyway`,
        );
      if (bootErrors) console.error(`warning: ${bootErrors} boot checks failed`);

      // Steady state window.
      const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      const before = (await server.ask({ type: 'counters' })) as { requestCount: number; upstream: number };
      const rssStart = process.memoryUsage().rss;
      let rssMax = rssStart;
      const cpu0 = ownCpuMs();
      const t0 = Date.now();
      inWindow = true;
      loop.enable();
      while (Date.now() - t0 < windowS * 1000) {
        await sleep(1_000);
        rssMax = Math.max(rssMax, process.memoryUsage().rss);
      }
      inWindow = false;
      loop.disable();
      const end = Date.now();
      for (const at of lastCheck.values()) {
        maxGapMs = Math.max(maxGapMs, end - at);
        if (end - at > lateAfterMs) late++;
      }
      const elapsed = (Date.now() - t0) / 1000;
      const cpuMs = ownCpuMs() - cpu0;
      const after = (await server.ask({ type: 'counters' })) as { requestCount: number; upstream: number };
      const crashed = daemon.supervisor.list().filter((r) => r.state === 'failed' || r.restarts > 0).length;
      if (crashed) console.error(`warning: ${crashed} actors crashed or restarted`);
      // Where the main thread's time goes at this scale (after the measured window: the profiler costs CPU itself).
      const prof =
        PROFILE_S > 0 && count === Math.max(...SIZES)
          ? { ...(await profile(() => sleep(PROFILE_S * 1000), 12)), seconds: PROFILE_S }
          : undefined;
      const deployments = countDeployments(daemon.store);
      if (deployments !== count) console.error(`warning: ${deployments - count} unexpected deployments`);
      return {
        repos: count,
        endpoint: ENDPOINT,
        gitUpstream: after.upstream - before.upstream,
        windowS: elapsed,
        bootS,
        bootChecked,
        scheduled: (count * elapsed) / INTERVAL,
        achieved,
        late,
        maxGapS: maxGapMs / 1000,
        errors,
        errorCodes: [...errorCodes].map(([c, n]) => `${c}×${n}`).join(' ') || '–',
        changed,
        gitRequests: after.requestCount - before.requestCount,
        loop: { p50: ms(loop, 50), p99: ms(loop, 99), max: maxMs(loop) },
        bootLoop: { p99: ms(bootLoop, 99), max: maxMs(bootLoop) },
        rssStartMb: MB(rssStart),
        rssMaxMb: MB(rssMax),
        heapMb: MB(process.memoryUsage().heapUsed),
        cpuPct: (100 * cpuMs) / (elapsed * 1000),
        cpuMsPerCheck: achieved ? cpuMs / achieved : Number.NaN,
        profile: prof,
      };
    } finally {
      unsubscribe();
      await daemon.dispose();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The original Shiparr script's way: one `git ls-remote` per repository, one after the other, round after round, for `windowS`. */
async function runBaseline(server: ServerHandle, count: number, windowS: number): Promise<Row['baseline']> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-scale-home-'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
  };
  const lsRemote = (url: string) =>
    new Promise<boolean>((resolve) => {
      execFile('git', ['ls-remote', url, 'refs/heads/main'], { env, timeout: 60_000 }, (err, stdout) =>
        resolve(!err && stdout.startsWith(server.head)),
      );
    });
  const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  let done = 0;
  let failed = 0;
  const cpu0 = ownCpuMs() + (await childrenCpuMs());
  const t0 = Date.now();
  loop.enable();
  try {
    outer: for (;;) {
      const roundStart = Date.now();
      for (let i = 0; i < count; i++) {
        if (Date.now() - t0 >= windowS * 1000) break outer;
        if (await lsRemote(`${server.baseUrl}/r${i}.git`)) done++;
        else failed++;
      }
      // A round that finished early waits for the next interval, like a polling loop.
      const rest = INTERVAL * 1000 - (Date.now() - roundStart);
      if (rest > 0) await sleep(Math.min(rest, windowS * 1000 - (Date.now() - t0)));
      if (Date.now() - t0 >= windowS * 1000) break;
    }
  } finally {
    loop.disable();
    await rm(home, { recursive: true, force: true });
  }
  const elapsed = (Date.now() - t0) / 1000;
  const cpuMs = ownCpuMs() + (await childrenCpuMs()) - cpu0;
  return {
    window: elapsed,
    scheduled: (count * elapsed) / INTERVAL,
    done,
    failed,
    cpuPct: (100 * cpuMs) / (elapsed * 1000),
    cpuMsPerCheck: done + failed ? cpuMs / (done + failed) : Number.NaN,
    loopP99: ms(loop, 99),
  };
}

async function clientMode(): Promise<void> {
  const startedAt = new Date().toISOString();
  const machine = await machineLine();
  const server = await spawnServer();
  // Rows of earlier runs (other repository counts) are kept in scale.json, so counts can be (re)run one at a time.
  const store = path.join(BENCH_DIR, 'results', 'scale.json');
  const rows: Row[] = JSON.parse(await readFile(store, 'utf8').catch(() => '[]')) as Row[];
  try {
    await server.ask({ type: 'copies', count: Math.max(...SIZES) });
    for (const count of SIZES) {
      console.error(`scale: ${count} repositories…`);
      const shiparr = await runShiparr(server, count);
      console.error(`scale: ${count} repositories: baseline…`);
      const baseline = await runBaseline(server, count, BASELINE_WINDOW);
      const row = { ...shiparr, baseline };
      const at = rows.findIndex((r) => r.repos === count);
      if (at >= 0) rows.splice(at, 1, row);
      else rows.push(row);
      rows.sort((a, b) => a.repos - b.repos);
      await mkdir(path.dirname(store), { recursive: true });
      await writeFile(store, `${JSON.stringify(rows, null, 1)}\n`);
      console.error(JSON.stringify({ ...row, profile: undefined }));
    }
  } finally {
    await server.close();
  }

  const main = table(
    [
      'Repos',
      'Git endpoint',
      'Window (s)',
      'Checks scheduled',
      'Checks done',
      'Done / scheduled',
      `Late checks (gap > ${fmt(INTERVAL * 1.1 + LATE_SLACK_S, 0)} s)`,
      'Max gap (s)',
      'Check errors (codes)',
      'Loop p50 (ms)',
      'Loop p99 (ms)',
      'Loop max (ms)',
      'RSS start (MB)',
      'RSS max (MB)',
      'CPU %',
      'CPU ms / check',
      'Git HTTP req / check (of which reached http-backend, total)',
      'Boot: first checks done / s',
      'Boot loop p99 / max (ms)',
    ],
    rows.map((r) => [
      r.repos,
      r.endpoint ?? 'git http-backend (CGI per request)',
      fmt(r.windowS, 0),
      fmt(r.scheduled, 0),
      r.achieved,
      ratio(r.achieved, r.scheduled),
      r.late ?? '–',
      fmt(r.maxGapS, 1),
      r.errors ? `${r.errors} (${r.errorCodes})` : 0,
      fmt(r.loop.p50, 1),
      fmt(r.loop.p99, 1),
      fmt(r.loop.max, 1),
      fmt(r.rssStartMb, 0),
      fmt(r.rssMaxMb, 0),
      fmt(r.cpuPct, 1),
      fmt(r.cpuMsPerCheck, 2),
      `${fmt(r.gitRequests / r.achieved, 2)} (${r.gitUpstream ?? r.gitRequests})`,
      `${r.bootChecked ?? r.repos}/${r.repos} in ${fmt(r.bootS, 0)} s`,
      `${fmt(r.bootLoop.p99, 0)} / ${fmt(r.bootLoop.max, 0)}`,
    ]),
  );
  const base = table(
    [
      'Repos',
      'Git endpoint',
      'Baseline window (s)',
      'Checks scheduled',
      'ls-remote done',
      'Done / scheduled',
      'Failed',
      'CPU % (incl. git children)',
      'CPU ms / check',
      'Shiparr CPU ms / check',
      'Shiparr / baseline CPU per check',
      'Shiparr / baseline checks per s',
    ],
    rows.map((r) => [
      r.repos,
      r.endpoint ?? 'git http-backend (CGI per request)',
      fmt(r.baseline.window, 0),
      fmt(r.baseline.scheduled, 0),
      r.baseline.done,
      ratio(r.baseline.done, r.baseline.scheduled),
      r.baseline.failed,
      fmt(r.baseline.cpuPct, 1),
      fmt(r.baseline.cpuMsPerCheck, 1),
      fmt(r.cpuMsPerCheck, 2),
      ratio(r.cpuMsPerCheck, r.baseline.cpuMsPerCheck, 3),
      ratio(r.achieved / r.windowS, (r.baseline.done + r.baseline.failed) / r.baseline.window),
    ]),
  );
  const big = rows.find((r) => r.repos >= 1000) ?? rows.at(-1);
  const goal = big
    ? `Goal at ${big.repos} repos: every scheduled check done (${big.late ?? '?'} late, max gap ${fmt(big.maxGapS, 1)} s, ${big.errors} errors; ${ratio(big.achieved, big.scheduled)} of repos × window ÷ interval) → ${big.late === 0 && big.errors === 0 ? 'met' : 'NOT met'}; ` +
      `loop p99 ${fmt(big.loop.p99)} ms < 50 ms → ${big.loop.p99 < 50 ? 'met' : 'NOT met'}; RSS max ${fmt(big.rssMaxMb, 0)} MB < 400 MB → ${big.rssMaxMb < 400 ? 'met' : 'NOT met'}.`
    : '';
  const md = [
    '# Scale: repositories polled by one daemon',
    '',
    `Last run ${startedAt} with \`npx tsx bench/scale.ts\` (rows of other counts kept from earlier runs in scale.json) (interval ${INTERVAL} s, window ${WINDOW} s, ${WINDOW_1000} s for ≥ 1000 repos, ${WORKERS} workers).`,
    `Machine: ${machine}.`,
    'Store seeded so every check finds "unchanged" (no deploys). Git server in a child process (its CPU not counted).',
    `Git endpoint (this run: ${ENDPOINT}): a replay cache in that child process answers repeated requests from memory with the bytes \`git http-backend\` gave for the first one`,
    '(like test/resilience/scale.test.ts), so the CGI fixture (one process per request) does not cap the check rate; Shiparr still does the full smart-HTTP exchange. The baseline uses the same endpoint.',
    'Event-loop delay = monitorEventLoopDelay sample minus its 10 ms period. Daemon CPU = process.cpuUsage() of the whole process (main thread + worker pool). "Done / scheduled" uses repos × window / interval;',
    'each repository polls at its interval ±10 % fixed jitter (the delay starts when its previous check ends). With the first checks all inside the boot spread, the phases are not uniform and a',
    'window of a few intervals holds ~0.5 fewer checks per repository than window ÷ interval, so ~0.9× can be on schedule. "Late checks" is the direct measure: gaps between two checks',
    `of one repository longer than interval × 1.1 + ${LATE_SLACK_S} s (plus repositories that much overdue at the window's end); 0 = every check on time.`,
    '',
    '## Shiparr (in-process daemon)',
    '',
    main,
    '',
    '## Baseline: naive loop, `git ls-remote` per repository in turn (same run, same server)',
    '',
    base,
    '',
    goal,
    '',
    ...rows
      .filter((r) => r.profile)
      .flatMap((r) => {
        const p = r.profile as NonNullable<Row['profile']>;
        return [
          `## Main-thread CPU profile at ${r.repos} repositories (${p.seconds} s after the window, ${fmt(p.totalMs / 1000, 1)} s sampled incl. idle)`,
          '',
          'V8 sampling profiler on the main thread (the data `node --cpu-prof` writes); worker threads not included. Self time:',
          '',
          table(
            ['Module / file', 'Self (ms)', '% of samples'],
            p.byModule.map((m) => [m.where, fmt(m.selfMs, 0), fmt(m.pct, 1)]),
          ),
          '',
          table(
            ['Function', 'Where', 'Self (ms)', '% of samples'],
            p.functions.map((f) => [f.fn, f.where, fmt(f.selfMs, 0), fmt(f.pct, 1)]),
          ),
          '',
        ];
      }),
  ].join('\n');
  console.log(md);
  console.error(`written to ${path.relative(process.cwd(), await writeResult('scale', md))}`);
}

// ───────────────────────── boot stall (`--boot [count]`) ─────────────────────────

/** What `--boot` measures; printed as one `BOOT {json}` line for bench/quick.ts. */
interface BootResult {
  repos: number;
  /** Longest event-loop stall from just before the daemon starts until 1 s after every actor is spawned (ms). */
  stallMaxMs: number;
  /** The same, counted only from when startDaemon resolved (spawn slices, first checks, API) (ms). */
  afterStartStallMaxMs: number;
  /** Loading + validating the project files alone (loadProjects, as startDaemon does first), ms. */
  configLoadMs: number;
  stallP99Ms: number;
  /** startDaemon (config, store, first spawn batch, HTTP server) until it resolved (ms). */
  startMs: number;
  /** Until every repository's actor was spawned (ms from the start). */
  spawnedMs: number;
  /** GET /api/health requests answered while actors were still being spawned (and their slowest latency, ms). */
  apiDuringBoot: number;
  apiMaxMs: number;
}

async function bootStall(server: ServerHandle, count: number): Promise<BootResult> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-boot-'));
  const configDir = path.join(root, 'config');
  const dataDir = path.join(root, 'data');
  await mkdir(configDir, { recursive: true });
  try {
    await writeProjects(configDir, server.baseUrl, count);
    await seed(configDir, dataDir, server.head);
    const tc = performance.now();
    await loadProjects(configDir, {
      env: { ...process.env, SHIPARR_CONFIG_PATH: configDir, SHIPARR_DATA_PATH: dataDir },
      dataPath: dataDir,
    });
    const configLoadMs = performance.now() - tc;
    global.gc?.();
    const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    loop.enable();
    const t0 = performance.now();
    const daemon = await startTestDaemon({ dirs: { configDir, dataDir }, env: { SHIPARR_WORKERS: String(WORKERS) } });
    const startMs = performance.now() - t0;
    const after = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    after.enable();
    const sup = daemon.supervisor as typeof daemon.supervisor & { whenBooted?: () => Promise<void> };
    let spawned = false;
    const booted = (sup.whenBooted?.() ?? Promise.resolve()).then(() => {
      spawned = true;
      return performance.now() - t0;
    });
    let apiDuringBoot = 0;
    let apiMaxMs = 0;
    try {
      // The API while actors are still being spawned: one request at a time until the last batch.
      while (!spawned) {
        const t = performance.now();
        const res = await fetch(`${daemon.url}/api/health`);
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`GET /api/health during boot: HTTP ${res.status}`);
        if (!spawned) {
          apiDuringBoot++;
          apiMaxMs = Math.max(apiMaxMs, performance.now() - t);
        }
      }
      const spawnedMs = await booted;
      await sleep(1_000);
      loop.disable();
      after.disable();
      if (daemon.supervisor.list().length !== count) throw new Error('not every repository is running');
      return {
        repos: count,
        stallMaxMs: maxMs(loop),
        afterStartStallMaxMs: maxMs(after),
        configLoadMs,
        stallP99Ms: ms(loop, 99),
        startMs,
        spawnedMs,
        apiDuringBoot,
        apiMaxMs,
      };
    } finally {
      await daemon.dispose();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** `--boot [count]`: only the boot of `count` repositories (default 1000), for the boot-stall goal and bench:quick. */
async function bootMode(count: number): Promise<void> {
  const server = await spawnServer();
  try {
    await server.ask({ type: 'copies', count });
    const r = await bootStall(server, count);
    console.log(`BOOT ${JSON.stringify(r)}`);
    const md = [
      '# Boot stall: event loop while the daemon starts',
      '',
      `Run ${new Date().toISOString()} with \`npx tsx bench/scale.ts --boot ${count}\`. Machine: ${await machineLine()}.`,
      'Event-loop delay (monitorEventLoopDelay, sample minus its 10 ms period) from just before startDaemon until 1 s after',
      'the last actor was spawned; the API is polled (GET /api/health, one at a time) between startDaemon and the last spawn.',
      '',
      table(
        [
          'Repos',
          'Loop stall max (ms)',
          'Loop p99 (ms)',
          'Stall max after startDaemon resolved (ms)',
          'Config load alone (ms)',
          'startDaemon (ms)',
          'All actors spawned (ms)',
          'API answers during spawning',
          'Slowest of them (ms)',
        ],
        [
          [
            r.repos,
            fmt(r.stallMaxMs, 0),
            fmt(r.stallP99Ms, 0),
            fmt(r.afterStartStallMaxMs, 0),
            fmt(r.configLoadMs, 0),
            fmt(r.startMs, 0),
            fmt(r.spawnedMs, 0),
            r.apiDuringBoot,
            fmt(r.apiMaxMs, 0),
          ],
        ],
      ),
      '',
      `Goal: no stall over 100 ms at 1,000 repositories → ${r.stallMaxMs <= 100 ? 'met' : 'NOT met'} (${fmt(r.stallMaxMs, 0)} ms).`,
      'The config load (YAML on a worker thread, then validation and resolution, which yield every ~10 ms) is the "config',
      'load alone" column; startDaemon yields between its boot steps, and the actors are spawned in slices of ~10 ms.',
      `Load average ${loadAverage()} at the end on ${os.cpus().length} CPUs (shared host).`,
      '',
    ].join('\n');
    console.error(`written to ${path.relative(process.cwd(), await writeResult('scale-boot', md))}`);
  } finally {
    await server.close();
  }
}

if (process.argv.includes('--server')) await serverMode();
else if (process.argv.includes('--boot')) {
  const n = Number(process.argv[process.argv.indexOf('--boot') + 1]);
  await bootMode(Number.isInteger(n) && n > 0 ? n : 1000);
} else await clientMode();
