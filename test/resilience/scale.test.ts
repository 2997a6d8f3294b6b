/**
 * @module 200 repositories from one project file, polling every 2 s against the local git server, for
 * SHIPARR_SCALE_SECONDS (default 120): every repository keeps polling, nothing deploys, no actor crashes and memory
 * stays flat. The store is pre-seeded with every repository deployed at its current head, so the measured window is
 * 200 actors doing nothing but polling (the fake compose is configured anyway, so an unexpected deploy cannot touch
 * the engine). Runs in-process to measure the daemon's own loop: event-loop delay (max, p99) goes to the test
 * diagnostics and is not asserted, since a stall limit depends on what else the host runs; the figures and their
 * targets belong to bench/scale.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startGitServer } from '../helpers/git-server.ts';
import { requireDocker } from '../helpers/docker.ts';
import { startTestDaemon } from '../helpers/daemon.ts';
import { FAKE_COMPOSE } from '../helpers/fake-compose/index.ts';
import { loadProjects } from '../../src/config/load.ts';
import { Store } from '../../src/store/index.ts';
import { sleep, until } from '../helpers/wait.ts';
import { tempDirs } from './helpers.ts';
import { countDeployments } from '../helpers/store-queries.ts';

const REPOS = Number(process.env.SHIPARR_SCALE_REPOS ?? 200);
const SECONDS = Number(process.env.SHIPARR_SCALE_SECONDS ?? 120);
const MB = (n: number) => Math.round(n / 1024 / 1024);
const ms = (ns: number) => Math.round(ns / 1e5) / 10;

/**
 * A memoizing front for the git server: the first request for a (method, URL, body) goes to the real git server
 * (real `git http-backend` bytes); repeats are answered from memory. The repositories do not change during the test,
 * so answers are identical — but spawning one CGI process per request (~70–130 ms each on a small host) cannot serve
 * 100 checks/s, and the fixture, not the daemon, would be what is measured.
 */
async function startReplayProxy(target: string): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  const cache = new Map<string, { status: number; headers: Record<string, string>; body: Buffer }>();
  let hits = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits++;
      const body = Buffer.concat(chunks);
      const key = `${req.method} ${req.url} ${body.toString('base64')}`;
      const send = (r: { status: number; headers: Record<string, string>; body: Buffer }) =>
        res.writeHead(r.status, r.headers).end(r.body);
      const hit = cache.get(key);
      if (hit) return send(hit);
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'git-protocol', 'authorization'])
        if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
      fetch(`${target}${req.url}`, { method: req.method, headers, body: req.method === 'GET' ? undefined : body })
        .then(async (r) => {
          const out = {
            status: r.status,
            headers: {
              'content-type': r.headers.get('content-type') ?? 'application/octet-stream',
              'cache-control': 'no-cache',
            },
            body: Buffer.from(await r.arrayBuffer()),
          };
          if (r.status === 200) cache.set(key, out);
          send(out);
        })
        .catch(() => res.writeHead(502).end());
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

test(
  `${REPOS} repositories polling every 2 s for ${SECONDS} s: all keep polling, nothing deploys, flat memory`,
  { timeout: (SECONDS + 420) * 1000 },
  async (t) => {
    // Verification talks to the engine (it finds no containers and fails, as intended).
    if (!(await requireDocker(t))) return;
    const git = await startGitServer();
    t.after(() => git.close());
    const proxy = await startReplayProxy(git.baseUrl);
    t.after(() => proxy.close());
    const dirs = await tempDirs(t, 'scale');
    const sha = await git.createRepo('r0', { 'compose.yaml': 'services:\n  app:\n    image: shiparr-test/none\n' });
    // Copies of one bare repository are as real to the server as 200 pushes, and much faster to make.
    for (let i = 1; i < REPOS; i++)
      await cp(path.join(git.root, 'r0.git'), path.join(git.root, `r${i}.git`), { recursive: true });
    const lines = ['project: scale', 'repositories:'];
    for (let i = 0; i < REPOS; i++)
      lines.push(
        `  r${i}:`,
        `    url: ${proxy.url}/r${i}.git`,
        '    check_interval: 2',
        '    healthcheck:',
        '      timeout: 5',
      );
    await writeFile(path.join(dirs.configDir, 'scale.yaml'), `${lines.join('\n')}\n`);

    // Pre-seed the store as if every repository had been deployed at the current head (with the current config):
    // the daemon then boots straight into polling. (Deploying 200 repositories first would measure deploy throughput
    // on this host, not the polling steady state this test is about.)
    const loaded = await loadProjects(dirs.configDir, { env: {}, dataPath: dirs.dataDir });
    assert.equal(loaded.errors.length, 0);
    const seed = Store.open(path.join(dirs.dataDir, 'shiparr.db'));
    seed.syncConfig(loaded.projects);
    for (const r of loaded.projects[0]?.repositories ?? [])
      seed.updateRepositoryState(r.key, { lastCommit: sha, configHash: r.configHash });
    seed.close();

    const saved = process.env.SHIPARR_COMPOSE_COMMAND;
    process.env.SHIPARR_COMPOSE_COMMAND = FAKE_COMPOSE;
    t.after(() => {
      if (saved === undefined) delete process.env.SHIPARR_COMPOSE_COMMAND;
      else process.env.SHIPARR_COMPOSE_COMMAND = saved;
    });
    const bootLoop = monitorEventLoopDelay({ resolution: 10 });
    bootLoop.enable();
    const bootStart = Date.now();
    const daemon = await startTestDaemon({ dirs });
    t.after(() => daemon.close());
    assert.equal(daemon.supervisor.list().length, REPOS);
    // Boot: every repository checks once and finds nothing to deploy.
    await until(
      () => daemon.store.listRepositories().every((r) => r.lastCheckedAt !== null),
      'every repository to check once',
      240_000,
      500,
    );
    bootLoop.disable();
    const bootSeconds = Math.round((Date.now() - bootStart) / 1000);
    assert.equal(countDeployments(daemon.store), 0, 'nothing to deploy');

    // Steady state: only polling, from the first full round of polls after the boot checks on.
    const bootChecked = new Map(daemon.store.listRepositories().map((r) => [r.key, r.lastCheckedAt]));
    await until(
      () => daemon.store.listRepositories().every((r) => r.lastCheckedAt !== bootChecked.get(r.key)),
      'a full round of polls after boot',
      120_000,
      500,
    );
    global.gc?.();
    const rssStart = process.memoryUsage().rss;
    const heapStart = process.memoryUsage().heapUsed;
    const hitsStart = proxy.hits();
    const checkedBefore = new Map(daemon.store.listRepositories().map((r) => [r.key, r.lastCheckedAt]));
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const samples: number[] = [];
    const started = Date.now();
    while (Date.now() - started < SECONDS * 1000) {
      await sleep(5_000);
      samples.push(MB(process.memoryUsage().rss));
    }
    loop.disable();
    const rssEnd = process.memoryUsage().rss;
    const heapEnd = process.memoryUsage().heapUsed;
    const requests = proxy.hits() - hitsStart;

    t.diagnostic(
      `boot: ${REPOS} first checks in ${bootSeconds} s, loop max ${ms(bootLoop.max)} ms p99 ${ms(bootLoop.percentile(99))} ms`,
    );
    t.diagnostic(
      `steady ${SECONDS} s: loop max ${ms(loop.max)} ms, p99 ${ms(loop.percentile(99))} ms, mean ${ms(loop.mean)} ms`,
    );
    t.diagnostic(
      `rss start ${MB(rssStart)} MB end ${MB(rssEnd)} MB (samples ${samples.join(' ')}); heap ${MB(heapStart)} → ${MB(heapEnd)} MB`,
    );
    t.diagnostic(`git requests in the window: ${requests} (${Math.round(requests / SECONDS)}/s)`);

    const stale = daemon.store.listRepositories().filter((r) => r.lastCheckedAt === checkedBefore.get(r.key));
    assert.deepEqual(
      stale.map((r) => r.key),
      [],
      'every repository kept polling',
    );
    // ~1 check per repository per 2 s; allow a lot of slack for a loaded CI host, but not "barely polling".
    assert.ok(requests >= (REPOS * SECONDS) / 2 / 4, `polling rate: ${requests} requests`);
    assert.equal(countDeployments(daemon.store), 0, 'unchanged repositories are not deployed');
    assert.ok(
      daemon.supervisor.list().every((r) => r.state !== 'failed' && r.restarts === 0),
      'no actor crashed',
    );
    // RSS is a sawtooth (garbage collection): compare the peaks of the two halves of the window, not two points.
    const half = Math.ceil(samples.length / 2);
    const early = Math.max(MB(rssStart), ...samples.slice(0, half));
    const late = Math.max(MB(rssEnd), ...samples.slice(half));
    assert.ok(late < early * 1.5, `RSS peak grew from ${early} MB to ${late} MB`);
  },
);
