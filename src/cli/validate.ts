/**
 * @module `shiparr validate [dir]`: loads every project file like the daemon would and prints each problem as
 * `<file>: <key.path>: <message>` plus a summary. Exit 0 = valid, 1 = errors found, 2 = usage error.
 */
import path from 'node:path';
import { formatConfigIssue } from '../errors.ts';
import { loadProjects } from '../config/load.ts';
import { validateNotificationUrl } from '../notify/index.ts';

/** Where output goes (process.stdout/stderr, or a collector in tests). */
export interface TextSink {
  write(chunk: string): unknown;
}

const USAGE = `Usage: shiparr validate [dir]

Checks every *.yaml / *.yml project file in dir (default: SHIPARR_CONFIG_PATH or ./config/projects).
\${VAR} references are resolved from the current environment.
Exit status: 0 all files valid, 1 errors found, 2 usage error.
`;

function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[`SHIPARR_${name}`] ?? env[`Shiparr_${name}`];
  return v && v.trim() ? v.trim() : undefined;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Runs the command. Reads only the two settings it needs (not loadSettings: an unrelated bad setting such as a
 * missing auth password must not make project files look invalid).
 */
export async function validateCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: TextSink,
  err: TextSink,
): Promise<number> {
  const positional: string[] = [];
  for (const a of args) {
    if (a === '-h' || a === '--help') {
      out.write(USAGE);
      return 0;
    }
    if (a.startsWith('-') && a !== '-') {
      err.write(`shiparr validate: unknown option "${a}"\n\n${USAGE}`);
      return 2;
    }
    positional.push(a);
  }
  if (positional.length > 1) {
    err.write(`shiparr validate: expected at most one directory, got ${positional.length}\n\n${USAGE}`);
    return 2;
  }
  const dir = positional[0] ?? setting(env, 'CONFIG_PATH') ?? './config/projects';
  const dataPath = path.resolve(setting(env, 'DATA_PATH') ?? './data');
  const githubToken = env.GITHUB_TOKEN?.trim() || undefined;

  // Same Shoutrrr URL checks as the daemon, so "validate passes" means "the daemon accepts it".
  const result = await loadProjects(dir, { env, dataPath, githubToken, checkNotificationUrl: validateNotificationUrl });
  for (const w of result.warnings) err.write(`warning: ${formatConfigIssue(w)}\n`);
  for (const e of result.errors) err.write(`${formatConfigIssue(e)}\n`);
  for (const p of result.projects)
    out.write(`ok: ${p.file}: project "${p.name}", ${count(p.repositories.length, 'repository', 'repositories')}\n`);
  if (result.files.length === 0 && result.errors.length === 0)
    err.write(`warning: no *.yaml or *.yml project files in ${dir}\n`);

  const repos = result.projects.reduce((n, p) => n + p.repositories.length, 0);
  out.write(
    `${count(result.files.length, 'file')}, ${count(result.projects.length, 'project')}, ` +
      `${count(repos, 'repository', 'repositories')}, ${count(result.errors.length, 'error')}\n`,
  );
  return result.errors.length ? 1 : 0;
}
