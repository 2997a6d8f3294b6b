/**
 * @module The one Piscina pool and its typed entry point.
 *
 *   main thread ──run(input,{filename})──▶ worker N: import tasks/<name>.{ts|js} → default(input)
 *        ▲                                          │ plain-data result (structured clone)
 *        └──────────────────────────────────────────┘
 * Aborting a running task kills its worker; tasks also get their own `timeoutMs` and kill the
 * child processes they spawn, because a killed worker does not kill them.
 */
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import type { RunTask, TaskName } from './types.ts';

// Sources run under tsx (`.ts`), the build runs from dist/ (`.js`): pick the worker file by our own extension.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** URL of the worker file for a task. */
export const taskFile = (name: TaskName): string => new URL(`./tasks/${name}${ext}`, import.meta.url).href;

export interface PoolOptions {
  maxThreads: number;
  log: Logger;
}

export function createPool({ maxThreads, log }: PoolOptions): Piscina {
  const pool = new Piscina({
    // Any task file works as the default; each run names its own filename.
    filename: taskFile('git-check'),
    minThreads: 1,
    maxThreads,
    idleTimeout: 60_000,
    // Workers under tsx need the loader too.
    execArgv: ext === '.ts' ? ['--import', 'tsx'] : [],
  });
  pool.on('error', (err: unknown) => log.error({ err }, 'worker pool error'));
  return pool;
}

/** Typed runner: `runTask('git-check', input, signal)`. */
export function createTaskRunner(pool: Piscina): RunTask {
  return (name, input, signal) => pool.run(input, { filename: taskFile(name), signal }) as never;
}
