/** @module `shiparr deploy <project>/<repo>`: one deploy through the daemon's own pipeline, printed stage by stage. */
import { userInfo } from 'node:os';
import type { Settings } from '../config/settings.ts';
import { parseRepoArgs } from './args.ts';
import { createLogger } from '../logger.ts';
import { startDaemon } from '../daemon/index.ts';

export async function deployCommand(
  args: string[],
  settings: Settings,
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const parsed = parseRepoArgs(args);
  if (!parsed) {
    err.write('usage: shiparr deploy <project>/<repo> [--commit=<sha>]\n');
    return 2;
  }
  const { key, commit: commitArg } = parsed;
  const log = createLogger({
    level: settings.logLevel === 'info' ? 'warn' : settings.logLevel,
    format: settings.logFormat,
  });
  const daemon = await startDaemon({ settings, env, log, http: false, watch: false, only: [key], checkOnStart: false });
  try {
    if (!daemon.supervisor.get(key)) {
      const errors = daemon.supervisor.configErrors;
      err.write(`shiparr: repository ${key} is not configured (or disabled) in ${settings.configPath}\n`);
      for (const e of errors) err.write(`  ${e.file}: ${e.path}: ${e.message}\n`);
      return 2;
    }
    const by = cliPrincipal(env);
    const { deploymentId } = daemon.supervisor.deploy(key, {
      trigger: 'cli',
      triggeredBy: by,
      ...(commitArg ? { commit: commitArg } : {}),
    });
    const opened = daemon.store.getDeployment(deploymentId);
    out.write(`deployment #${deploymentId} of ${key}\n`);
    out.write(`asked by: ${opened?.triggeredBy ?? by}\nwhy: ${opened?.reason?.summary ?? 'unknown'}\n`);
    const d = await daemon.supervisor.waitForDeployment(deploymentId, 24 * 3_600_000);
    out.write(daemon.store.getDeploymentLogs(deploymentId) ?? '');
    if (d?.reason && d.reason.summary !== opened?.reason?.summary) out.write(`why: ${d.reason.summary}\n`);
    const ok = d?.status === 'success';
    out.write(
      `${ok ? 'OK' : 'FAILED'}: ${d?.status ?? 'unknown'}${d?.commit ? ` ${d.commit.slice(0, 12)}` : ''}${d?.durationMs != null ? ` in ${(d.durationMs / 1000).toFixed(1)} s` : ''}${d?.error ? ` — ${d.error}` : ''}\n`,
    );
    return ok ? 0 : 1;
  } finally {
    await daemon.close();
  }
}

/** Who runs the CLI, for the audit trail: `cli:<login name>` (SUDO_USER first: who asked, not root), else `cli`. */
function cliPrincipal(env: NodeJS.ProcessEnv): string {
  let name = env['SUDO_USER'] || env['USER'] || env['LOGNAME'] || '';
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = '';
    }
  }
  const safe = name.replace(/[^A-Za-z0-9._@-]/g, '').slice(0, 64);
  return safe ? `cli:${safe}` : 'cli';
}
