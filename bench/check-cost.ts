/**
 * @module Bench: what one "has the branch moved?" check costs, against the same local git server and one unchanged
 * repository with history (200 commits, 300 files), and a copy of it with 500 tags:
 *   floor: one raw `GET …/info/refs?service=git-upload-pack` (no Git-Protocol header: the v0 advertisement), with a
 *          plain node:http client in this process, and with `curl` as a process — no check can cost less than one request
 *   (a) in-process `git-check` task, as Shiparr runs it: once the remote is known, one protocol v2 `ls-refs` POST
 *   (a') the previous two-request path (isomorphic-git `listServerRefs`: discovery GET, then ls-refs POST)
 *   (b) spawning `git ls-remote <url> refs/heads/main`
 *   (c) the original Shiparr script's loop: `git fetch origin main` + `git rev-parse` compare in an existing clone
 * The git server runs in a child process (this file with `--server`) so its CPU is not charged to the client.
 * Client CPU = this process's own CPU (process.cpuUsage) + CPU of the processes it waited for (/proc/self/stat).
 * Goals: check ≤ 1.2× the in-process floor, ≤ 0.25× the fetch loop (median latency).
 *
 * Run: npx tsx bench/check-cost.ts [iterations=50]   → prints a markdown table, writes bench/results/check-cost.md
 *      npx tsx bench/check-cost.ts --quick            → 15 iterations, a `CHECK {json}` line, no result file
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import http from 'node:http';
import git0 from 'isomorphic-git';
import { abortableHttp } from '../src/git/http.ts';
import gitCheck from '../src/workers/tasks/git-check.ts';
import { startGitServer } from '../test/helpers/git-server.ts';

const exec = promisify(execFile);
const COMMITS = 200;
const FILES = 300;
const REPO = 'bench';
/** A copy of REPO with this many tags: the v0 advertisement grows with them, an ls-refs answer does not. */
const TAGS = 500;
const TAG_REPO = 'tags';

interface Counters {
  requestCount: number;
  bytesOut: number;
  bytesIn: number;
}
type FromServer = { type: 'ready'; url: string; tagsUrl: string } | ({ type: 'counters' } & Counters);

// ───────────────────────── server mode (child process) ─────────────────────────

/** fast-import stream: first commit with FILES files, then COMMITS-1 commits touching a few files each. */
function historyStream(): string {
  const parts: string[] = [];
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
  for (let c = 1; c <= COMMITS; c++) {
    parts.push(
      `commit refs/heads/main\ncommitter Bench <bench@shiparr.invalid> ${1_700_000_000 + c * 60} +0000\n${data(`commit ${c}`)}`,
    );
    const touched =
      c === 1 ? Array.from({ length: FILES }, (_, i) => i) : [c % FILES, (c * 7) % FILES, (c * 13) % FILES];
    for (const i of touched) {
      const body = `# file ${i}, revision ${c}\n${'x'.repeat(200 + (i % 50) * 20)}\n`;
      parts.push(`M 100644 inline dir${i % 10}/file-${i}.txt\n${data(body)}`);
    }
    parts.push('\n');
  }
  return parts.join('');
}

async function serverMode(): Promise<void> {
  const server = await startGitServer();
  const bare = path.join(server.root, `${REPO}.git`);
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: server.root, GIT_CONFIG_GLOBAL: '/dev/null' };
  await exec('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare], { env });
  await new Promise<void>((resolve, reject) => {
    const p = spawn('git', ['fast-import', '--quiet'], { cwd: bare, env, stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}`))));
    p.stdin.end(historyStream());
  });
  await exec('git', ['gc', '--quiet'], { cwd: bare, env });
  const tagged = path.join(server.root, `${TAG_REPO}.git`);
  await exec('git', ['clone', '--quiet', '--bare', bare, tagged], { env });
  const head = (await exec('git', ['rev-parse', 'refs/heads/main'], { cwd: tagged, env })).stdout.trim();
  await new Promise<void>((resolve, reject) => {
    const p = spawn('git', ['update-ref', '--stdin'], { cwd: tagged, env, stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git update-ref exited ${code}`))));
    p.stdin.end(Array.from({ length: TAGS }, (_, i) => `create refs/tags/v1.${i}.0 ${head}\n`).join(''));
  });
  await exec('git', ['pack-refs', '--all'], { cwd: tagged, env });
  const send = (m: FromServer) => process.send?.(m);
  process.on('message', (msg: string) => {
    if (msg === 'counters')
      send({ type: 'counters', requestCount: server.requestCount, bytesOut: server.bytesOut, bytesIn: server.bytesIn });
    else if (msg === 'reset') {
      server.resetCounters();
      send({ type: 'counters', requestCount: 0, bytesOut: 0, bytesIn: 0 });
    } else if (msg === 'close') void server.close().then(() => process.exit(0));
  });
  send({ type: 'ready', url: server.repoUrl(REPO), tagsUrl: server.repoUrl(TAG_REPO) });
}

// ───────────────────────── client mode ─────────────────────────

/** CPU ms of terminated, waited-for children (cutime + cstime), from /proc/self/stat. */
async function childrenCpuMs(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after "(comm)": index 0 is field 3 (state); cutime = field 16, cstime = field 17.
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / clockTicks;
}
let clockTicks = 100;

const ownCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;

interface Row {
  name: string;
  medianMs: number;
  p90Ms: number;
  cpuMs: number;
  bytes: number;
  requests: number;
}

/** The floor: one plain GET of the v0 ref advertisement with node:http (no keep-alive, like Shiparr's git agent). */
function rawGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/info/refs?service=git-upload-pack`, { agent: floorAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(chunks).toString('latin1'))
          : reject(new Error(`HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
const floorAgent = new http.Agent({ keepAlive: false });

/** The sha of refs/heads/main in a v0 advertisement. */
const mainFrom = (adv: string): string => /([0-9a-f]{40}) refs\/heads\/main\n/.exec(adv)?.[1] ?? 'missing';

async function clientMode(iterations: number, quick: boolean): Promise<void> {
  clockTicks = Number((await exec('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--server'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: ((m: FromServer) => void)[] = [];
  child.on('message', (m: FromServer) => waiting.shift()?.(m));
  const next = () => new Promise<FromServer>((resolve) => waiting.push(resolve));
  const ask = async (msg: 'counters' | 'reset') => {
    const p = next();
    child.send(msg);
    return (await p) as Counters;
  };

  const ready = await next();
  if (ready.type !== 'ready') throw new Error('server did not start');
  const { url, tagsUrl } = ready;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-check-'));
  const home = path.join(tmp, 'home');
  await mkdir(home);
  const env = {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    HOME: home,
    GIT_TERMINAL_PROMPT: '0',
  };
  const git = async (args: string[], cwd?: string) => (await exec('git', args, { cwd, env })).stdout.trim();
  const clone = path.join(tmp, 'clone');
  await git(['clone', '--quiet', '--branch', 'main', url, clone]);
  const expected = await git(['rev-parse', 'HEAD'], clone);

  const check = async (u: string) => {
    const r = await gitCheck({ url: u, branch: 'main', timeoutMs: 30_000 });
    if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
    return r.commit;
  };
  const twoStep = async (u: string) => {
    const refs = await git0.listServerRefs({
      http: abortableHttp(new AbortController().signal),
      url: u,
      prefix: 'refs/heads/main',
      protocolVersion: 2,
    });
    return refs.find((r) => r.ref === 'refs/heads/main')?.oid ?? 'missing';
  };
  const curl = async (u: string) =>
    mainFrom((await exec('curl', ['-sS', '--fail', `${u}/info/refs?service=git-upload-pack`])).stdout);
  const methods: { name: string; run: () => Promise<string>; quick?: boolean }[] = [
    {
      name: 'floor: raw GET info/refs (node:http, in-process)',
      run: async () => mainFrom(await rawGet(url)),
      quick: true,
    },
    { name: 'floor: raw GET info/refs (`curl` process)', run: () => curl(url), quick: true },
    { name: '(a) Shiparr git-check (1 request: v2 ls-refs POST)', run: () => check(url), quick: true },
    { name: "(a') previous two-request path (listServerRefs)", run: () => twoStep(url) },
    {
      name: '(b) spawn `git ls-remote`',
      run: async () => (await git(['ls-remote', url, 'refs/heads/main'])).split('\t')[0]!,
    },
    {
      name: '(c) `git fetch` + `git rev-parse` (original script loop)',
      run: async () => {
        await git(['fetch', '--quiet', 'origin', 'main'], clone);
        const remote = await git(['rev-parse', 'origin/main'], clone);
        const local = await git(['rev-parse', 'HEAD'], clone);
        return remote === local ? local : remote;
      },
      quick: true,
    },
    {
      name: `${TAGS} tags — floor: raw GET info/refs (node:http)`,
      run: async () => mainFrom(await rawGet(tagsUrl)),
    },
    { name: `${TAGS} tags — (a) Shiparr git-check`, run: () => check(tagsUrl) },
    { name: `${TAGS} tags — (a') previous two-request path`, run: () => twoStep(tagsUrl) },
  ];

  const rows: Row[] = [];
  // Per method, one block: CPU, bytes and requests at the server (quick mode: a few, for the request count).
  const blockIterations = quick ? 5 : iterations;
  for (const m of quick ? methods.filter((x) => x.quick) : methods) {
    for (let i = 0; i < 3; i++) await m.run(); // warm-up: JIT, page cache, and the check learns the remote's path
    await ask('reset');
    const cpu0 = ownCpuMs();
    const child0 = await childrenCpuMs();
    const lat: number[] = [];
    for (let i = 0; i < blockIterations; i++) {
      const t0 = performance.now();
      const sha = await m.run();
      lat.push(performance.now() - t0);
      if (sha !== expected) throw new Error(`${m.name}: got ${sha}, expected ${expected}`);
    }
    const cpu = ownCpuMs() - cpu0 + ((await childrenCpuMs()) - child0);
    const c = await ask('counters');
    rows.push({
      name: m.name,
      medianMs: median(lat),
      p90Ms: p90(lat),
      cpuMs: cpu / blockIterations,
      bytes: (c.bytesOut + c.bytesIn) / blockIterations,
      requests: c.requestCount / blockIterations,
    });
  }
  // The ratios' latencies: the floor, the check and the fetch loop taken in turn, round after round, so a shared
  // host's load (it moves by the second) weighs on each of them alike.
  const turns = methods.filter((m) => m.quick);
  const interleaved = new Map<string, number[]>(turns.map((m) => [m.name, []]));
  for (let i = 0; i < iterations; i++) {
    for (const m of turns) {
      const t0 = performance.now();
      const sha = await m.run();
      interleaved.get(m.name)!.push(performance.now() - t0);
      if (sha !== expected) throw new Error(`${m.name}: got ${sha}, expected ${expected}`);
    }
  }
  const turnMedian = (prefix: string) => median([...interleaved].find(([n]) => n.startsWith(prefix))![1]);

  const byName = (prefix: string) => rows.find((r) => r.name.startsWith(prefix))!;
  const floor = byName('floor: raw GET info/refs (node:http');
  const shiparr = byName('(a) Shiparr');
  const fetchLoop = byName('(c)');
  const t = {
    check: turnMedian('(a) Shiparr'),
    floor: turnMedian('floor: raw GET info/refs (node:http'),
    curl: turnMedian('floor: raw GET info/refs (`curl`'),
    fetchLoop: turnMedian('(c)'),
  };
  const summary = {
    iterations,
    checkMs: t.check,
    floorMs: t.floor,
    curlMs: t.curl,
    fetchLoopMs: t.fetchLoop,
    checkToFloor: t.check / t.floor,
    checkToCurl: t.check / t.curl,
    checkToFetchLoop: t.check / t.fetchLoop,
    requestsPerCheck: shiparr.requests,
  };
  if (quick) {
    console.log(`CHECK ${JSON.stringify(summary)}`);
    const closed = new Promise((resolve) => child.once('exit', resolve));
    child.send('close');
    await closed;
    await rm(tmp, { recursive: true, force: true });
    return;
  }
  const lsRemote = byName('(b)');
  const f1 = (x: number) => x.toFixed(1);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const gitVersion = await git(['--version']);
  const lines = [
    `# Check cost: one "has the branch moved?" check`,
    '',
    `**Shiparr check / floor (in-process GET): ${ratio(t.check, t.floor)} latency (goal ≤ 1.2×), ${ratio(shiparr.cpuMs, floor.cpuMs)} CPU; ` +
      `/ curl: ${ratio(t.check, t.curl)}; / fetch loop: ${ratio(t.check, t.fetchLoop)} latency (goal ≤ 0.25×); ` +
      `${shiparr.requests.toFixed(1)} HTTP requests per check.**`,
    `Latency ratios from ${iterations} interleaved rounds (floor, curl, check, fetch loop in turn each round; medians ${t.floor.toFixed(1)} / ${t.curl.toFixed(1)} / ${t.check.toFixed(1)} / ${t.fetchLoop.toFixed(1)} ms),`,
    "so the shared host's load weighs on each alike; the table below measures each method in its own block (CPU, bytes, requests).",
    '',
    `${iterations} iterations per method (after 3 warm-ups), one unchanged repository (${COMMITS} commits, ${FILES} files),`,
    `local \`git http-backend\` server in a separate process on 127.0.0.1. Node ${process.version}, ${gitVersion}, ${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}.`,
    'CPU = client process CPU + CPU of the git processes it spawned (server CPU excluded). Bytes = request + response bytes on the wire.',
    `Run ${new Date().toISOString()} with \`npx tsx bench/check-cost.ts\`.`,
    '',
    '| Method | Median latency (ms) | p90 (ms) | CPU / check (ms) | Bytes / check | HTTP req / check | Latency vs floor | Latency vs ls-remote | Latency vs fetch loop | CPU vs floor | CPU vs ls-remote | CPU vs fetch loop | Bytes vs fetch loop |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${f1(r.medianMs)} | ${f1(r.p90Ms)} | ${f1(r.cpuMs)} | ${Math.round(r.bytes)} | ${r.requests.toFixed(1)} | ` +
        `${ratio(r.medianMs, floor.medianMs)} | ${ratio(r.medianMs, lsRemote.medianMs)} | ${ratio(r.medianMs, fetchLoop.medianMs)} | ${ratio(r.cpuMs, floor.cpuMs)} | ${ratio(r.cpuMs, lsRemote.cpuMs)} | ${ratio(r.cpuMs, fetchLoop.cpuMs)} | ${ratio(r.bytes, fetchLoop.bytes)} |`,
    ),
    '',
    `Floor rows and (a) on the ${TAGS}-tag copy: the v0 advertisement carries every ref, the ls-refs answer only the branch (see the bytes).`,
    `Machine shared with other work while measuring (load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} at the end of the run on ${os.cpus().length} CPUs): compare ratios, not absolute times.`,
    '',
  ];
  const table = lines.join('\n');
  console.log(table);
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'check-cost.md');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, table);
  console.log(`written to ${path.relative(process.cwd(), out)}`);

  const closed = new Promise((resolve) => child.once('exit', resolve));
  child.send('close');
  await closed;
  await rm(tmp, { recursive: true, force: true });
}

if (process.argv.includes('--server')) {
  await serverMode();
} else if (process.argv.includes('--quick')) {
  await clientMode(15, true);
} else {
  const n = Number(process.argv[2] ?? 50);
  await clientMode(Number.isInteger(n) && n > 0 ? n : 50, false);
}
