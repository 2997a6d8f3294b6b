/**
 * @module `shiparr plan <project>/<repo> [--commit=<sha>] [--json]`: what deploying a commit (default: the remote head)
 * would change, per service, as a table (or the API's JSON with `--json`). Runs the same planner as
 * GET /api/repositories/:id/plan in this process (a scratch directory; the live checkout and the running stack are not
 * touched). Exit 0 with a plan, 1 when no plan could be made, 2 on usage or configuration errors.
 */
import path from 'node:path';
import type { Settings } from '../config/settings.ts';
import { parseRepoArgs } from './args.ts';
import { configLoader } from '../daemon/config.ts';
import { createPlanner, loadPlanKey } from '../daemon/plan.ts';
import type { PlanReport } from '../http/ports.ts';
import { registerSecretValues, secretEnvValues } from '../lib/redact.ts';
import { createLogger } from '../logger.ts';
import { createPool, createTaskRunner } from '../workers/pool.ts';

const USAGE = 'usage: shiparr plan <project>/<repo> [--commit=<sha>] [--json]\n';

/** The plan as a table: SERVICE, ACTION, REASONS; then one line saying whether a deploy would change anything. */
function planTable(key: string, p: PlanReport): string {
  const rows = p.services.map((s) => [s.service, s.action, s.reasons.join('; ') || '-']);
  const head = ['SERVICE', 'ACTION', 'REASONS'];
  const w0 = Math.max(head[0]!.length, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(head[1]!.length, ...rows.map((r) => r[1]!.length));
  const line = (r: string[]) => `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`.trimEnd();
  const changing = p.services.filter((s) => s.action !== 'keep').length;
  return [
    `plan of ${key} at ${p.commit.slice(0, 12)}`,
    line(head),
    ...rows.map(line),
    p.noop
      ? 'nothing to change: a deploy of this commit would be skipped (unless forced)'
      : `${changing} of ${p.services.length} service(s) would change`,
    '',
  ].join('\n');
}

export async function planCommand(
  args: string[],
  settings: Settings,
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const parsed = parseRepoArgs(args, ['--json']);
  if (!parsed) {
    err.write(USAGE);
    return 2;
  }
  const { key, commit } = parsed;
  const json = parsed.flags.has('--json');
  registerSecretValues('environment', [...secretEnvValues(env), settings.sopsAgeKey, settings.githubToken]);
  const config = await configLoader(settings, env, [key])();
  const repo = config.projects.flatMap((p) => p.repositories).find((r) => r.key === key);
  if (!repo) {
    err.write(`shiparr: repository ${key} is not configured (or disabled) in ${settings.configPath}\n`);
    for (const e of config.errors) err.write(`  ${e.file}: ${e.path}: ${e.message}\n`);
    return 2;
  }
  const log = createLogger({ level: 'warn', format: settings.logFormat });
  const pool = createPool({ maxThreads: 1, log });
  try {
    const planner = createPlanner({
      runTask: createTaskRunner(pool),
      repoConfig: (k) => (k === key ? repo : undefined),
      secrets: { ageKeyFile: settings.sopsAgeKeyFile, ageKey: settings.sopsAgeKey },
      hmacKey: await loadPlanKey(settings.dataPath),
      scratchRoot: path.join(settings.dataPath, 'scratch'),
    });
    const r = await planner.plan(key, commit ? { commit: commit.toLowerCase() } : {});
    if (!r.ok) {
      if (json) out.write(`${JSON.stringify({ error: { code: r.code, message: r.message } })}\n`);
      err.write(`shiparr: no plan for ${key}: ${r.code}: ${r.message}\n`);
      return 1;
    }
    out.write(json ? `${JSON.stringify(r.plan, null, 2)}\n` : planTable(key, r.plan));
    return 0;
  } finally {
    await pool.destroy();
  }
}
