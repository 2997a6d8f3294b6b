/**
 * @module Regression guard, not a timed test: `npm run bench:quick` prints three figures next to their floor or goal —
 * the check's latency ratio to one raw ref-advertisement request (bench/check-cost.ts --quick), the longest
 * event-loop stall while 1,000 repositories boot (bench/scale.ts --boot 1000) and the size of the built image
 * (`docker image inspect`, or "not built"). It fails only when a benchmark cannot run; the figures are for a human
 * (or a CI step) to compare with bench/RESULTS.md.
 *
 * Env: BENCH_QUICK_IMAGE=shiparr:latest (image to inspect)
 */
import { execFile, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BENCH_DIR, loadAverage } from './lib.ts';

const exec = promisify(execFile);
const IMAGE = process.env.BENCH_QUICK_IMAGE ?? 'shiparr:latest';

/** Runs a bench script, passes its stderr through, returns the JSON of its `<tag> {…}` stdout line. */
function runTagged(script: string, args: string[], tag: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(`${tag} `));
      if (code !== 0 || !line) reject(new Error(`${script} ${args.join(' ')} exited ${code} without a ${tag} line`));
      else resolve(JSON.parse(line.slice(tag.length + 1)) as Record<string, number>);
    });
  });
}

async function imageSize(): Promise<string> {
  try {
    const { stdout } = await exec('docker', ['image', 'inspect', '--format', '{{.Size}}', IMAGE]);
    return `${(Number(stdout.trim()) / 1e6).toFixed(1)} MB (${IMAGE})`;
  } catch {
    return `not built (${IMAGE})`;
  }
}

const t0 = Date.now();
const x = (n: number | undefined) => `${(n ?? Number.NaN).toFixed(2)}×`;
const c = await runTagged('check-cost.ts', ['--quick'], 'CHECK');
const b = await runTagged('scale.ts', ['--boot', '1000'], 'BOOT');
const image = await imageSize();
console.log(
  [
    `bench:quick (${((Date.now() - t0) / 1000).toFixed(0)} s; load average ${loadAverage()} on ${os.cpus().length} CPUs)`,
    `check ratio to the floor: ${x(c.checkToFloor)} (check ${c.checkMs?.toFixed(1)} ms, raw GET info/refs ${c.floorMs?.toFixed(1)} ms; ` +
      `curl ${x(c.checkToCurl)}; fetch loop ${x(c.checkToFetchLoop)}; ${c.requestsPerCheck} HTTP request(s) per check) — goal ≤ 1.2×, ≤ 0.25× the fetch loop`,
    `boot stall at 1,000 repositories: ${b.stallMaxMs?.toFixed(0)} ms max (config load alone ${b.configLoadMs?.toFixed(0)} ms; ` +
      `after startDaemon ${b.afterStartStallMaxMs?.toFixed(0)} ms max; all actors spawned in ${((b.spawnedMs ?? 0) / 1000).toFixed(1)} s, ` +
      `${b.apiDuringBoot} API answers meanwhile) — goal ≤ 100 ms`,
    `image size: ${image}`,
  ].join('\n'),
);
