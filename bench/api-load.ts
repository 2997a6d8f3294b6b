/**
 * @module Bench: HTTP API latency under a fixed request rate, on an idle daemon and while two deployments run
 * continuously (real `docker compose` with the busybox test image, forced redeploys on two repositories).
 * Load: autocannon in a child process (this file with `--load`), BENCH_API_RATE req/s split evenly between
 * `GET /api/repositories/:id` and `GET /widget/dashy?project=…`, for BENCH_API_SECONDS. The daemon runs in this
 * process; its event-loop delay is recorded in each phase.
 * Floor, same run, same load, in turn with Shiparr in each phase: a bare node:http server in a child process (this
 * file with `--bare`) answering the same paths with the same bytes and content type Shiparr gave. Each phase runs
 * BENCH_API_ROUNDS rounds of BENCH_API_SECONDS in ABBA order (Shiparr, bare, bare, Shiparr, …), none profiled, so a
 * burst of host load weighs on both alike; each figure is the median over the rounds. Goals: Shiparr p99 ≤ 1.2× the
 * bare server's idle, ≤ 1.5× while the deploys run. Shiparr's main thread is then CPU-profiled in a window of its
 * own in each phase (the profiler's sampling slows the daemon, so profiled windows are not in the ratios).
 * The git server runs in a child process too (`--git`), so its per-request `git http-backend` spawns are not
 * charged to the daemon's main thread.
 *
 * Env: BENCH_API_RATE=200 (total req/s)  BENCH_API_SECONDS=10 (per round)  BENCH_API_ROUNDS=4 (per server and phase)
 *      BENCH_API_CONNECTIONS=10 (per endpoint)
 *      BENCH_API_DEPLOY_MODE=force|commit (force: redeploy the same commit; commit: push a new marker each time)
 * Run: npx tsx bench/api-load.ts   → markdown on stdout and in bench/results/api-load.md
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startGitServer } from '../test/helpers/git-server.ts';
import { startTestDaemon } from '../test/helpers/daemon.ts';
import {
  composeDown,
  ensureBusyboxImage,
  removeProjectContainers,
  uniqueProjectName,
  webServiceCompose,
} from '../test/helpers/docker.ts';
import { envNumber, fmt, machineLine, profile, ratio, table, writeResult, loadAverage } from './lib.ts';
import { lastSuccessfulDeployment } from '../test/helpers/store-queries.ts';

const RATE = envNumber('BENCH_API_RATE', 200);
const SECONDS = envNumber('BENCH_API_SECONDS', 10);
const ROUNDS = envNumber('BENCH_API_ROUNDS', 4);
const CONNECTIONS = envNumber('BENCH_API_CONNECTIONS', 10);
const MODE = process.env.BENCH_API_DEPLOY_MODE === 'commit' ? 'commit' : 'force';

interface LoadSpec {
  targets: { name: string; url: string }[];
  rate: number;
  seconds: number;
  connections: number;
}
interface LoadResult {
  name: string;
  requests: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

// ───────────────────────── load mode (child process) ─────────────────────────

async function loadMode(spec: LoadSpec): Promise<void> {
  const { default: autocannon } = await import('autocannon');
  const results = await Promise.all(
    spec.targets.map(async (t): Promise<LoadResult> => {
      const r = await autocannon({
        url: t.url,
        connections: spec.connections,
        duration: spec.seconds,
        overallRate: spec.rate / spec.targets.length,
        timeout: 10,
      });
      return {
        name: t.name,
        requests: r.requests.total,
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        max: r.latency.max,
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
      };
    }),
  );
  process.send?.(results, () => process.exit(0));
}

function runLoad(spec: LoadSpec): Promise<LoadResult[]> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--load', JSON.stringify(spec)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let got: LoadResult[] | null = null;
    child.on('message', (m: LoadResult[]) => {
      got = m;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      got ? resolve(got) : reject(new Error(`load generator exited ${code} without results`)),
    );
  });
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** Per endpoint, the rounds' median of each latency percentile; totals of counts; the largest max. */
function medians(rounds: LoadResult[][]): LoadResult[] {
  return (rounds[0] ?? []).map((first, i) => {
    const all = rounds.map((r) => r[i] as LoadResult);
    const sum = (k: 'requests' | 'errors' | 'timeouts' | 'non2xx') => all.reduce((n, r) => n + r[k], 0);
    return {
      name: first.name,
      requests: sum('requests'),
      p50: median(all.map((r) => r.p50)),
      p90: median(all.map((r) => r.p90)),
      p99: median(all.map((r) => r.p99)),
      max: Math.max(...all.map((r) => r.max)),
      errors: sum('errors'),
      timeouts: sum('timeouts'),
      non2xx: sum('non2xx'),
    };
  });
}

// ───────────────────────── bare server mode (child process): the floor ─────────────────────────

interface BareResponse {
  path: string;
  contentType: string;
  body: string; // base64
}

/** Serves the captured responses (by path + query) with node:http and nothing else; reports its port. */
async function bareMode(responses: BareResponse[]): Promise<void> {
  const byPath = new Map(responses.map((r) => [r.path, { type: r.contentType, body: Buffer.from(r.body, 'base64') }]));
  const server = http.createServer((req, res) => {
    const r = byPath.get(req.url ?? '');
    if (!r) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': r.type, 'content-length': r.body.length }).end(r.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send?.({ port: (server.address() as AddressInfo).port });
  process.on('message', () => server.close(() => process.exit(0)));
}

async function startBare(responses: BareResponse[]): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), ['--bare', JSON.stringify(responses)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`bare server exited ${code}`)));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send('close');
      await exited;
    },
  };
}

// ───────────────────────── git server mode (child process) ─────────────────────────

type GitRequest = { id: number; op: 'create' | 'commit'; name: string; files: Record<string, string> } | 'close';

/** The git server in its own process, so its `git http-backend` spawns do not land on the daemon's main thread. */
async function gitMode(): Promise<void> {
  const server = await startGitServer();
  process.on('message', (m: GitRequest) => {
    if (m === 'close') return void server.close().then(() => process.exit(0));
    const run = m.op === 'create' ? server.createRepo(m.name, m.files) : server.commit(m.name, m.files);
    void run.then(
      (sha) => process.send?.({ id: m.id, sha }),
      (err: unknown) => process.send?.({ id: m.id, error: String(err) }),
    );
  });
  process.send?.({ baseUrl: server.baseUrl });
}

async function startGitChild() {
  const child = fork(fileURLToPath(import.meta.url), ['--git'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { baseUrl: string }) => resolve(m.baseUrl));
    child.once('exit', (code) => reject(new Error(`git server exited ${code}`)));
  });
  const waiting = new Map<number, { resolve: (sha: string) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: number; sha?: string; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(m.error));
    else w?.resolve(m.sha as string);
  });
  let next = 0;
  const call = (op: 'create' | 'commit', name: string, files: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      child.send({ id, op, name, files } satisfies GitRequest);
    });
  return {
    repoUrl: (name: string) => `${baseUrl}/${name}.git`,
    createRepo: (name: string, files: Record<string, string>) => call('create', name, files),
    commit: (name: string, files: Record<string, string>) => call('commit', name, files),
    close: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send('close' satisfies GitRequest);
      await exited;
    },
  };
}

// ───────────────────────── main ─────────────────────────

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const machine = await machineLine();
  const image = await ensureBusyboxImage();
  const git = await startGitChild();
  const projects = [uniqueProjectName('bench-api-a'), uniqueProjectName('bench-api-b')];
  const names = ['a', 'b'];
  let marker = 0;
  for (const name of names) {
    await git.createRepo(name, {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: `${name}-${marker}` }),
    });
  }
  const yaml = [
    'project: bench',
    'repositories:',
    ...names.flatMap((name, i) => [
      `  ${name}:`,
      `    url: ${git.repoUrl(name)}`,
      '    branch: main',
      '    check_interval: 3600',
      `    compose_project: ${projects[i]}`,
      '    pull: never',
      '    healthcheck:',
      '      timeout: 60',
      '    timeouts:',
      '      apply: 120',
    ]),
    '',
  ].join('\n');
  const daemon = await startTestDaemon({
    projects: { 'bench.yaml': yaml },
    env: { SHIPARR_MAX_CONCURRENT_DEPLOYS: '2' },
  });
  const keys = names.map((n) => `bench/${n}`);
  let stopDeploys = false;
  let bare: Awaited<ReturnType<typeof startBare>> | null = null;
  try {
    // Boot deployments.
    const deadline = Date.now() + 180_000;
    while (!keys.every((k) => lastSuccessfulDeployment(daemon.store, k)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    if (!keys.every((k) => lastSuccessfulDeployment(daemon.store, k)))
      throw new Error('boot deployments did not succeed');
    await daemon.supervisor.whenQuiet(60_000);

    const id = daemon.supervisor.get('bench/a')?.id;
    const targets = [
      { name: 'GET /api/repositories/:id', url: `${daemon.url}/api/repositories/${id}` },
      { name: 'GET /widget/dashy?project=bench', url: `${daemon.url}/widget/dashy?project=bench` },
    ];
    const captured: BareResponse[] = [];
    for (const t of targets) {
      const r = await fetch(t.url);
      if (r.status !== 200) throw new Error(`${t.name} answered ${r.status}`);
      const u = new URL(t.url);
      captured.push({
        path: u.pathname + u.search,
        contentType: r.headers.get('content-type') ?? 'application/octet-stream',
        body: Buffer.from(await r.arrayBuffer()).toString('base64'),
      });
    }
    bare = await startBare(captured);
    const bareBase = bare.baseUrl;
    const bareTargets = targets.map((t) => ({
      name: t.name,
      url: bareBase + new URL(t.url).pathname + new URL(t.url).search,
    }));
    const spec: LoadSpec = { targets, rate: RATE, seconds: SECONDS, connections: CONNECTIONS };
    type Phase = { results: LoadResult[]; loopP99: number; loopMax: number };
    const profiled = (): Promise<Awaited<ReturnType<typeof profile>>> => profile(() => runLoad(spec), 12);
    /** ROUNDS rounds per server in ABBA order, unprofiled; the daemon's loop delay is recorded in Shiparr's rounds. */
    const interleaved = async (): Promise<{ shiparr: Phase; bare: Phase }> => {
      const own: LoadResult[][] = [];
      const floor: LoadResult[][] = [];
      // A fresh histogram per round: one re-enabled after a pause would count the pause as a delay.
      const loopP99: number[] = [];
      const loopMax: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        for (const which of r % 2 === 0 ? ['shiparr', 'bare'] : ['bare', 'shiparr']) {
          if (which === 'bare') floor.push(await runLoad({ ...spec, targets: bareTargets }));
          else {
            const h = monitorEventLoopDelay({ resolution: 10 });
            h.enable();
            own.push(await runLoad(spec));
            h.disable();
            loopP99.push(Math.max(0, h.percentile(99) / 1e6 - 10));
            loopMax.push(Math.max(0, h.max / 1e6 - 10));
          }
        }
      }
      const loop = { loopP99: median(loopP99), loopMax: Math.max(...loopMax) };
      return { shiparr: { results: medians(own), ...loop }, bare: { results: medians(floor), loopP99: 0, loopMax: 0 } };
    };
    // Warm-up (JIT, connection setup), not reported.
    await runLoad({ ...spec, seconds: 3 });
    await runLoad({ ...spec, targets: bareTargets, seconds: 3 });
    console.error(
      `api-load: idle phase, ${ROUNDS} rounds each of Shiparr and the bare server, then a profiled window…`,
    );
    const { shiparr: idle, bare: idleBare } = await interleaved();
    const idleProfile = await profiled();

    // Busy: both repositories redeploy back to back for the whole phase.
    const finished = { count: 0, failed: 0 };
    const deployingMs = { total: 0 };
    const loops = keys.map(async (key, i) => {
      while (!stopDeploys) {
        if (MODE === 'commit') {
          marker++;
          await git.commit(names[i] as string, {
            'compose.yaml': webServiceCompose({ image, healthy: true, marker: `${names[i]}-${marker}` }),
          });
        }
        const t0 = Date.now();
        const { deploymentId } = daemon.supervisor.deploy(key, { trigger: 'api' });
        const d = await daemon.supervisor.waitForDeployment(deploymentId, 180_000);
        deployingMs.total += Date.now() - t0;
        if (d?.status === 'success') finished.count++;
        else finished.failed++;
      }
    });
    // Let both deploys get going before the measured load starts.
    await new Promise((r) => setTimeout(r, 1_000));
    console.error('api-load: busy phase, the same rounds and a profiled window while the deploys go on…');
    const before = { ...finished };
    const busyStart = Date.now();
    const { shiparr: busy, bare: busyBare } = await interleaved();
    const busyProfile = await profiled();
    const busySeconds = (Date.now() - busyStart) / 1000;
    const during = { ok: finished.count - before.count, failed: finished.failed - before.failed };
    stopDeploys = true;
    await Promise.all(loops);

    const rows: (string | number)[][] = [];
    for (const [i, t] of targets.entries()) {
      const a = idle.results[i] as LoadResult;
      const b = busy.results[i] as LoadResult;
      rows.push([
        t.name,
        'idle',
        a.requests,
        fmt(a.p50, 1),
        fmt(a.p90, 1),
        fmt(a.p99, 1),
        fmt(a.max, 1),
        a.errors + a.timeouts,
        a.non2xx,
        '',
      ]);
      rows.push([
        t.name,
        '2 deploys running',
        b.requests,
        fmt(b.p50, 1),
        fmt(b.p90, 1),
        fmt(b.p99, 1),
        fmt(b.max, 1),
        b.errors + b.timeouts,
        b.non2xx,
        ratio(b.p99, Math.max(a.p99, 1)),
      ]);
    }
    const floorRows: (string | number)[][] = [];
    const floorRatios: { idle: number; busy: number }[] = [];
    for (const [i, t] of targets.entries()) {
      const [a, b, fa, fb] = [idle, busy, idleBare, busyBare].map((p) => p.results[i] as LoadResult) as [
        LoadResult,
        LoadResult,
        LoadResult,
        LoadResult,
      ];
      const r = { idle: a.p99 / Math.max(fa.p99, 1), busy: b.p99 / Math.max(fb.p99, 1) };
      floorRatios.push(r);
      floorRows.push([
        t.name,
        `${fmt(a.p50, 1)} / ${fmt(a.p99, 1)}`,
        `${fmt(fa.p50, 1)} / ${fmt(fa.p99, 1)}`,
        `${r.idle.toFixed(2)}×`,
        `${fmt(b.p50, 1)} / ${fmt(b.p99, 1)}`,
        `${fmt(fb.p50, 1)} / ${fmt(fb.p99, 1)}`,
        `${r.busy.toFixed(2)}×`,
        fa.errors + fa.timeouts + fa.non2xx + fb.errors + fb.timeouts + fb.non2xx,
      ]);
    }
    const worstIdleFloor = Math.max(...floorRatios.map((r) => r.idle));
    const worstBusyFloor = Math.max(...floorRatios.map((r) => r.busy));
    const profileTables = (p: Awaited<ReturnType<typeof profile>>) => [
      table(
        ['Module', 'Self ms', '%'],
        p.byModule.map((r) => [r.where, fmt(r.selfMs, 0), fmt(r.pct, 1)]),
      ),
      '',
      table(
        ['Function', 'Where', 'Self ms', '%'],
        p.functions.map((r) => [r.fn, r.where, fmt(r.selfMs, 0), fmt(r.pct, 1)]),
      ),
    ];
    const worstBusyP99 = Math.max(...busy.results.map((r) => r.p99));
    const ratios = targets.map(
      (_, i) => (busy.results[i] as LoadResult).p99 / Math.max((idle.results[i] as LoadResult).p99, 1),
    );
    const worstRatio = Math.max(...ratios);
    const errs = busy.results.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0);
    const md = [
      '# API under load: idle daemon vs 2 deployments running',
      '',
      `Run ${startedAt} with \`npx tsx bench/api-load.ts\`. Machine: ${machine}.`,
      `autocannon in a child process: ${RATE} req/s in total (${RATE / targets.length} req/s per endpoint, ${CONNECTIONS} connections each), after a 3 s warm-up. ` +
        `Each phase: ${ROUNDS} rounds of ${SECONDS} s per server, Shiparr and the bare server in turn (ABBA), none profiled; every latency is the median over the rounds, requests and errors are totals, max is the maximum.`,
      `Busy phase: \`bench/a\` and \`bench/b\` redeploy back to back (${MODE === 'force' ? 'forced redeploys of the same commit via supervisor.deploy' : 'a new commit with a new marker before each deploy'}; real docker compose + health verification): ` +
        `${during.ok} deployments finished during the ${fmt(busySeconds, 0)} s phase (${during.failed} failed).`,
      'autocannon records latency with 1 ms resolution; the idle p99 is floored at 1 ms for ratios.',
      '',
      table(
        [
          'Endpoint',
          'Phase',
          'Requests',
          'p50 (ms)',
          'p90 (ms)',
          'p99 (ms)',
          'max (ms)',
          'Errors+timeouts',
          'Non-2xx',
          'p99 busy / idle',
        ],
        rows,
      ),
      '',
      `Daemon event-loop delay in Shiparr's rounds (monitorEventLoopDelay minus its 10 ms period; median of the rounds' p99, largest max): idle p99 ${fmt(idle.loopP99)} ms / max ${fmt(idle.loopMax)} ms; busy p99 ${fmt(busy.loopP99)} ms / max ${fmt(busy.loopMax)} ms.`,
      '',
      '## Floor: a bare node:http server with the same bytes, same load, same run, in turn with Shiparr',
      '',
      `Load average ${loadAverage()} at the end of the run on ${os.cpus().length} CPUs (a shared host: compare the ratios).`,
      '',
      table(
        [
          'Endpoint',
          'Shiparr idle p50 / p99 (ms)',
          'Bare idle p50 / p99 (ms)',
          'Idle p99 Shiparr ÷ bare',
          'Shiparr busy p50 / p99 (ms)',
          'Bare busy p50 / p99 (ms)',
          'Busy p99 Shiparr ÷ bare',
          'Bare errors',
        ],
        floorRows,
      ),
      '',
      `Floor goals: idle p99 ≤ 1.2× the bare server → ${worstIdleFloor <= 1.2 ? 'met' : 'NOT met'} (worst ${worstIdleFloor.toFixed(2)}×); ` +
        `p99 during deploys ≤ 1.5× the bare server during the same deploys → ${worstBusyFloor <= 1.5 ? 'met' : 'NOT met'} (worst ${worstBusyFloor.toFixed(2)}×).`,
      '',
      `## Where the daemon's main-thread CPU went during the busy phase (profiled window after the rounds: ${fmt(busyProfile.totalMs / 1000, 1)} s sampled over ${SECONDS} s of load; self time)`,
      '',
      ...profileTables(busyProfile),
      '',
      `## … and during the idle phase (${fmt(idleProfile.totalMs / 1000, 1)} s sampled; self time)`,
      '',
      ...profileTables(idleProfile),
      '',
      `Goals: p99 during deploys ${fmt(worstBusyP99, 1)} ms < 25 ms → ${worstBusyP99 < 25 ? 'met' : 'NOT met'}; busy/idle p99 ratio ${worstRatio.toFixed(2)} < 2 → ${worstRatio < 2 ? 'met' : 'NOT met'}; errors during deploys: ${errs}.`,
      '',
    ].join('\n');
    console.log(md);
    console.error(`written to ${path.relative(process.cwd(), await writeResult('api-load', md))}`);
  } finally {
    stopDeploys = true;
    await daemon.dispose().catch(() => undefined);
    for (const p of projects) {
      await composeDown(p);
      await removeProjectContainers(p);
    }
    await git.close();
    await bare?.close();
  }
}

const li = process.argv.indexOf('--load');
const bi = process.argv.indexOf('--bare');
if (li >= 0) await loadMode(JSON.parse(process.argv[li + 1] ?? '{}') as LoadSpec);
else if (bi >= 0) await bareMode(JSON.parse(process.argv[bi + 1] ?? '[]') as BareResponse[]);
else if (process.argv.includes('--git')) await gitMode();
else await main();
