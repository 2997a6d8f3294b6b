/**
 * @module Bench: end-to-end pipeline time. A commit changing the compose file is pushed to the local git server, then a
 * signed generic webhook is POSTed; measured from the end of the push to `compose up` starting and to the deployment's
 * `success` (health verified). Baseline, same run, same repository and engine: a shell script doing the original Shiparr script's steps in
 * an existing clone — `git fetch`, `git reset --hard`, `docker compose up -d`, then polling until every container is
 * healthy (every 100 ms). Each iteration pushes a new marker, so both sides recreate the container.
 * Shiparr's stage times come from its state events (supervisor.subscribe) and the deployment log, whose lines carry
 * timestamps and task durations (`applying: docker compose up -d (N ms)`).
 *
 * Env: BENCH_PIPELINE_ITERATIONS=7
 * Run: npx tsx bench/pipeline.ts   → markdown on stdout and in bench/results/pipeline.md
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { signatureHeaders } from '../src/http/webhooks.ts';
import { startGitServer } from '../test/helpers/git-server.ts';
import { startTestDaemon } from '../test/helpers/daemon.ts';
import {
  composeDown,
  ensureBusyboxImage,
  removeProjectContainers,
  uniqueProjectName,
  webServiceCompose,
} from '../test/helpers/docker.ts';
import { envNumber, fmt, git, gitEnv, machineLine, median, table, writeResult } from './lib.ts';
import { lastSuccessfulDeployment } from '../test/helpers/store-queries.ts';

const execFileAsync = promisify(execFile);
const ITERATIONS = envNumber('BENCH_PIPELINE_ITERATIONS', 7);
const SECRET = 'bench-webhook-secret';
const KEY = 'pipe/web';

/** The original Shiparr script's deploy steps; prints `<label> <epoch ns>` marks on stdout. */
const SCRIPT = `#!/bin/sh
set -e
mark() { echo "$1 $(date +%s%N)"; }
mark start
git fetch --quiet origin main
git reset --quiet --hard origin/main
mark up_start
docker compose -p "$PROJECT" up -d >&2
mark up_done
while :; do
  ids=$(docker compose -p "$PROJECT" ps -q)
  states=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids)
  bad=$(echo "$states" | grep -v -e '^running/healthy$' -e '^running/none$' || true)
  [ -z "$bad" ] && break
  sleep 0.1
done
mark healthy
`;

interface ShiparrSample {
  webhookMs: number;
  checking: number;
  pulling: number;
  applying: number;
  composeStart: number;
  composeMs: number;
  verifying: number;
  notifying: number;
  success: number;
}
interface ScriptSample {
  fetchReset: number;
  upStart: number;
  upDone: number;
  healthy: number;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const machine = await machineLine();
  const image = await ensureBusyboxImage();
  const gitServer = await startGitServer();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-bench-pipeline-'));
  const home = path.join(tmp, 'home');
  await mkdir(home);
  const env = gitEnv(home);
  const shiparrProject = uniqueProjectName('bench-pipe-shiparr');
  const scriptProject = uniqueProjectName('bench-pipe-script');
  let marker = 0;
  const nextCompose = () => ({ 'compose.yaml': webServiceCompose({ image, healthy: true, marker: `m${++marker}` }) });
  await gitServer.createRepo('web', nextCompose());
  const yaml = [
    'project: pipe',
    'repositories:',
    '  web:',
    `    url: ${gitServer.repoUrl('web')}`,
    '    branch: main',
    '    check_interval: 3600',
    `    compose_project: ${shiparrProject}`,
    '    pull: never',
    `    webhook_secret: ${SECRET}`,
    '    healthcheck:',
    '      timeout: 60',
    '',
  ].join('\n');
  const daemon = await startTestDaemon({ projects: { 'pipe.yaml': yaml } });
  const marks = new Map<string, number>();
  const unsubscribe = daemon.supervisor.subscribe((e) => {
    const now = Date.now();
    if (e.type === 'state' && e.repoKey === KEY && !marks.has(e.state)) marks.set(e.state, now);
    if (e.type === 'deployment.finished' && e.repoKey === KEY) marks.set(`finished:${e.deploymentId}`, now);
  });
  try {
    const deadline = Date.now() + 120_000;
    while (!lastSuccessfulDeployment(daemon.store, KEY) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    if (!lastSuccessfulDeployment(daemon.store, KEY)) throw new Error('boot deployment did not succeed');
    await daemon.supervisor.whenQuiet(30_000);

    // Baseline clone and script, prepared outside the measurement; first `up` creates the project.
    const clone = path.join(tmp, 'clone');
    await git(tmp, ['clone', '--quiet', '--branch', 'main', gitServer.repoUrl('web'), clone], env);
    const script = path.join(tmp, 'deploy.sh');
    await writeFile(script, SCRIPT);
    await chmod(script, 0o755);
    const runScript = async (): Promise<ScriptSample & { t0: number }> => {
      const t0 = Date.now();
      // The real HOME stays (docker finds its compose plugin there); git config is still isolated.
      const scriptEnv = {
        ...process.env,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_TERMINAL_PROMPT: '0',
        PROJECT: scriptProject,
      };
      const { stdout } = await execFileAsync(script, [], { cwd: clone, env: scriptEnv, timeout: 120_000 });
      const m = new Map(
        stdout
          .trim()
          .split('\n')
          .map((l) => {
            const [k, v] = l.split(' ');
            return [k as string, Number(BigInt(v as string) / 1_000_000n)];
          }),
      );
      const at = (k: string) => (m.get(k) as number) - t0;
      return {
        t0,
        fetchReset: at('up_start') - at('start'),
        upStart: at('up_start'),
        upDone: at('up_done'),
        healthy: at('healthy'),
      };
    };
    await runScript();

    const shiparr: ShiparrSample[] = [];
    const baseline: ScriptSample[] = [];
    const url = `${daemon.url}/api/webhooks/generic`;
    for (let i = 0; i < ITERATIONS; i++) {
      // ── Shiparr: push, then a signed webhook.
      const sha = await gitServer.commit('web', nextCompose());
      marks.clear();
      const t0 = Date.now();
      const body = JSON.stringify({ url: gitServer.repoUrl('web'), branch: 'main' });
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signatureHeaders('generic', body, SECRET) },
        body,
      });
      const webhookMs = Date.now() - t0;
      if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
      const { matched } = (await res.json()) as { matched: string[] };
      if (!matched.includes(KEY)) throw new Error('webhook matched no repository');
      let dep = daemon.store.latestDeployment(KEY);
      const waitUntil = Date.now() + 120_000;
      while ((dep?.commit !== sha || dep.status === 'running' || dep.status === 'pending') && Date.now() < waitUntil) {
        await new Promise((r) => setTimeout(r, 20));
        dep = daemon.store.latestDeployment(KEY);
      }
      if (dep?.commit !== sha || dep.status !== 'success')
        throw new Error(`deployment of ${sha} ended ${dep?.status ?? 'missing'}`);
      // Event emission is synchronous with the state change; wait for the finish mark itself.
      while (!marks.has(`finished:${dep.id}`)) await new Promise((r) => setTimeout(r, 5));
      const logs = daemon.store.getDeploymentLogs(dep.id) ?? '';
      const up = /^\[([^\]]+)\] applying: docker compose up -d \((\d+) ms\)/m.exec(logs);
      if (!up) throw new Error(`no compose line in the deployment log:\n${logs}`);
      const composeEnd = Date.parse(up[1] as string);
      const composeMs = Number(up[2]);
      const rel = (k: string) => (marks.get(k) ?? Number.NaN) - t0;
      shiparr.push({
        webhookMs,
        checking: rel('checking'),
        pulling: rel('pulling'),
        applying: rel('applying'),
        composeStart: composeEnd - composeMs - t0,
        composeMs,
        verifying: rel('verifying'),
        notifying: rel('notifying'),
        success: rel(`finished:${dep.id}`),
      });
      await daemon.supervisor.whenQuiet(30_000);

      // ── Baseline: the same kind of change, deployed by the script.
      await gitServer.commit('web', nextCompose());
      baseline.push(await runScript());
      console.error(
        `pipeline ${i + 1}/${ITERATIONS}: shiparr ${shiparr.at(-1)?.success} ms, script ${baseline.at(-1)?.healthy} ms`,
      );
    }

    const s = (k: keyof ShiparrSample) => median(shiparr.map((x) => x[k]));
    const b = (k: keyof ScriptSample) => median(baseline.map((x) => x[k]));
    const stages = table(
      ['Shiparr milestone (from push done)', 'Median (ms)', 'Samples (ms)'],
      (
        [
          ['webhook answered (202)', 'webhookMs'],
          ['checking (ls-refs)', 'checking'],
          ['pulling (git-sync)', 'pulling'],
          ['applying (state entered)', 'applying'],
          ['`docker compose up -d` process start (log)', 'composeStart'],
          ['… `compose up` duration (log)', 'composeMs'],
          ['verifying (state entered = compose done)', 'verifying'],
          ['notifying (health verified)', 'notifying'],
          ['deployment finished: success', 'success'],
        ] as [string, keyof ShiparrSample][]
      ).map(([label, k]) => [label, fmt(s(k), 0), shiparr.map((x) => fmt(x[k], 0)).join(', ')]),
    );
    const base = table(
      ['Script milestone (from start)', 'Median (ms)', 'Samples (ms)'],
      (
        [
          ['`git fetch` + `git reset --hard` done', 'fetchReset'],
          ['`docker compose up -d` start', 'upStart'],
          ['`compose up` done', 'upDone'],
          ['all containers healthy', 'healthy'],
        ] as [string, keyof ScriptSample][]
      ).map(([label, k]) => [label, fmt(b(k), 0), baseline.map((x) => fmt(x[k], 0)).join(', ')]),
    );
    const toUp = s('composeStart') - b('upStart');
    const toSuccess = s('success') - b('healthy');
    const upDur = s('composeMs') - (b('upDone') - b('upStart'));
    const verifyTail = s('notifying') - s('verifying') - (b('healthy') - b('upDone'));
    const md = [
      "# Pipeline overhead: push + webhook → compose up → success, vs the original Shiparr script's shell steps",
      '',
      `Run ${startedAt} with \`npx tsx bench/pipeline.ts\`. Machine: ${machine}.`,
      `${ITERATIONS} iterations, alternating Shiparr and script, each deploying a new commit (new marker → container recreated); busybox httpd with a 1 s healthcheck.`,
      'Shiparr: signed generic webhook (`X-Shiparr-Signature`) right after the push; times from its state events and deployment-log timestamps.',
      '',
      '## Shiparr',
      '',
      stages,
      '',
      '## Baseline script (`git fetch`, `git reset --hard`, `docker compose up -d`, poll health every 100 ms)',
      '',
      base,
      '',
      '## Overhead (Shiparr median − script median)',
      '',
      table(
        ['What', 'Shiparr (ms)', 'Script (ms)', 'Overhead (ms)'],
        [
          ['to `compose up` start', fmt(s('composeStart'), 0), fmt(b('upStart'), 0), fmt(toUp, 0)],
          ['`compose up` itself', fmt(s('composeMs'), 0), fmt(b('upDone') - b('upStart'), 0), fmt(upDur, 0)],
          [
            'compose done → healthy',
            fmt(s('notifying') - s('verifying'), 0),
            fmt(b('healthy') - b('upDone'), 0),
            fmt(verifyTail, 0),
          ],
          ['to success / healthy (end to end)', fmt(s('success'), 0), fmt(b('healthy'), 0), fmt(toSuccess, 0)],
        ],
      ),
      '',
      `Goal: overhead < 300 ms → ${toSuccess < 300 ? 'met' : 'NOT met'} (${fmt(toSuccess, 0)} ms end to end; ${fmt(toUp, 0)} ms before compose starts).`,
      '',
    ].join('\n');
    console.log(md);
    console.error(`written to ${path.relative(process.cwd(), await writeResult('pipeline', md))}`);
  } finally {
    unsubscribe();
    await daemon.dispose().catch(() => undefined);
    for (const p of [shiparrProject, scriptProject]) {
      await composeDown(p);
      await removeProjectContainers(p);
    }
    await gitServer.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
