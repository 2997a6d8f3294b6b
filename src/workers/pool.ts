/**
 * @module The one Piscina pool and its typed entry point.
 *
 *   main thread ──run(input,{filename})──▶ worker N: import tasks/<name>.{ts|js} → default(input)
 *        ▲                                          │ plain-data result (structured clone)
 *        └──────────────────────────────────────────┘
 * Aborting a running task kills its worker; tasks also get their own `timeoutMs` and kill the
 * child processes they spawn, because a killed worker does not kill them.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { maskSecrets } from '../lib/redact.ts';
import type { RunTask, RunTaskOptions, TaskName } from './types.ts';

// Sources run under tsx (`.ts`), the build runs from dist/ (`.js`): pick the worker file by our own extension.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** URL of the worker file for a task. */
const taskFile = (name: TaskName): string => new URL(`./tasks/${name}${ext}`, import.meta.url).href;

/** How long the main thread waits, after a task returned, for the last live lines still in flight. */
const LIVE_DRAIN_MS = 1_000;

/**
 * A port pair for live output: the task gets `port` (transferred), `onLines` gets each batch the task posts; `done()`
 * resolves once the task said `end` (or after LIVE_DRAIN_MS) and closes the main side.
 */
function liveChannel(onLines: (lines: string[]) => void): { port: MessagePort; done(): Promise<void> } {
  const { port1, port2 } = new MessageChannel();
  let ended: () => void = () => undefined;
  const end = new Promise<void>((resolve) => (ended = resolve));
  port1.on('message', (m: { lines?: unknown; end?: boolean }) => {
    // Masked again here: the main thread knows every registered secret value (a worker may not).
    if (Array.isArray(m.lines)) onLines(m.lines.filter((l): l is string => typeof l === 'string').map(maskSecrets));
    if (m.end) ended();
  });
  return {
    port: port2,
    async done() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([end, new Promise<void>((r) => (timer = setTimeout(r, LIVE_DRAIN_MS)))]);
      clearTimeout(timer);
      port1.close();
    },
  };
}

/** Async tasks per worker thread (see createPool). */
const CONCURRENT_TASKS_PER_WORKER = 16;

export interface PoolOptions {
  maxThreads: number;
  log: Logger;
}

export function createPool({ maxThreads, log }: PoolOptions): Piscina {
  const pool = new Piscina({
    // Any task file works as the default; each run names its own filename.
    filename: taskFile('git-check'),
    // Warm workers: starting one costs hundreds of ms (seconds under tsx), paid on the deploy's critical path.
    minThreads: maxThreads,
    maxThreads,
    idleTimeout: 24 * 3_600_000,
    // Tasks mostly wait on the network or a child process (git-check, compose): several share a worker, so a
    // long `compose up` never stalls the head checks of 1,000 other repositories.
    concurrentTasksPerWorker: CONCURRENT_TASKS_PER_WORKER,
    // Workers under tsx need the loader too.
    execArgv: ext === '.ts' ? ['--import', 'tsx'] : [],
  });
  pool.on('error', (err: unknown) => log.error({ err }, 'worker pool error'));
  return pool;
}

/**
 * Typed runner: `runTask('git-check', input, signal)`. Rejects only when *this* task was aborted. Any other
 * rejection — a bug in a task, or its worker being terminated because another task sharing it was aborted —
 * comes back as a transient `TASK_CRASHED` result, so the caller retries with backoff instead of pinning a commit.
 */
export function createTaskRunner(pool: Piscina): RunTask {
  return (async (name: TaskName, input: unknown, signal?: AbortSignal, opts?: RunTaskOptions) => {
    const started = Date.now();
    const live = opts?.onLines && name === 'compose-up' ? liveChannel(opts.onLines) : undefined;
    try {
      if (!live) return await pool.run(input, { filename: taskFile(name), signal });
      const withPort = { ...(input as object), progress: live.port };
      const r: unknown = await pool.run(withPort, { filename: taskFile(name), signal, transferList: [live.port] });
      await live.done();
      return r;
    } catch (err) {
      void live?.done();
      if (signal?.aborted) throw err;
      const reason = maskSecrets(err instanceof Error ? err.message : String(err));
      return {
        ok: false,
        durationMs: Date.now() - started,
        code: 'TASK_CRASHED',
        message: `${name} task stopped unexpectedly: ${reason}`,
        transient: true,
      };
    }
  }) as RunTask;
}
