/**
 * @module Runs the real `shiparr serve` as a child process (node --import tsx src/main.ts serve) for tests that need
 * signals, `kill -9` or a process-wide environment (DOCKER_HOST): waits for the "serving" log line, keeps the JSON log
 * lines, and reports the exit code/signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerEnvSecrets, saveArtifact, saveDatabase, sweepDir } from './secret-sweep.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:PORT` from the "Shiparr is serving" line. */
  readonly url: string;
  /** Parsed JSON log lines (stdout) seen so far. */
  readonly logs: Record<string, unknown>[];
  /** Raw stderr text seen so far. */
  readonly stderr: string;
  /** Sends a signal (no-op once exited). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** GET/POST JSON on the daemon's API. */
  api<T = unknown>(p: string, init?: { method?: string }): Promise<{ status: number; body: T }>;
}

export interface SpawnDaemonOptions {
  configDir: string;
  dataDir: string;
  /** Extra environment (merged over process.env and the defaults below). */
  env?: Record<string, string | undefined>;
  /** How long to wait for the daemon to listen (default 60 s). */
  readyTimeoutMs?: number;
}

/** Starts `shiparr serve` on a free port of 127.0.0.1 and resolves once it is serving. */
export async function spawnDaemon(opts: SpawnDaemonOptions): Promise<DaemonProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SHIPARR_CONFIG_PATH: opts.configDir,
    SHIPARR_DATA_PATH: opts.dataDir,
    SHIPARR_PORT: '0',
    SHIPARR_HOST: '127.0.0.1',
    SHIPARR_LOG_LEVEL: 'info',
    SHIPARR_WORKERS: '2',
    SHIPARR_SHUTDOWN_GRACE: '20',
    ...opts.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  // Only what the test adds: the runner's own environment is not the daemon's secret.
  registerEnvSecrets('spawned daemon environment', opts.env ?? {});
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let url: string | null = null;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitWaiters: ((e: { code: number | null; signal: NodeJS.Signals | null }) => void)[] = [];
  let ready: (u: string) => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  const readyP = new Promise<string>((res, rej) => {
    ready = res;
    failed = rej;
  });

  let buf = '';
  let stdout = '';
  const sweeping = sweepDir() !== undefined;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    if (sweeping) stdout += chunk;
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (process.env.SHIPARR_TEST_CHILD_LOGS === '1') process.stderr.write(`[daemon ${child.pid}] ${line}\n`);
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (!url && typeof rec['url'] === 'string' && rec['msg'] === 'Shiparr is serving') {
          url = rec['url'];
          ready(url);
        }
      } catch {
        // Not JSON (e.g. a warning from node): keep only structured lines.
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    if (process.env.SHIPARR_TEST_CHILD_LOGS === '1') process.stderr.write(`[daemon ${child.pid} stderr] ${chunk}`);
  });
  child.on('exit', (code, signal) => {
    exit = { code, signal };
    if (sweeping) saveArtifact('spawned-daemon.log', `${stdout}\n${stderr}`);
    saveDatabase('spawned-daemon', path.join(opts.dataDir, 'shiparr.db'));
    failed(new Error(`daemon exited before serving (code ${code}, signal ${signal}): ${stderr.slice(-2000)}`));
    for (const w of exitWaiters.splice(0)) w(exit);
  });

  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      readyP,
      new Promise((_, rej) => {
        timer = setTimeout(
          () => rej(new Error(`daemon not serving after ${timeoutMs} ms: ${stderr.slice(-2000)}`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }

  const base = url as unknown as string;
  return {
    child,
    pid: child.pid as number,
    url: base,
    logs,
    get stderr() {
      return stderr;
    },
    kill(signal) {
      if (!exit) child.kill(signal);
    },
    exited() {
      if (exit) return Promise.resolve(exit);
      return new Promise((r) => exitWaiters.push(r));
    },
    async api<T>(p: string, init: { method?: string } = {}) {
      const res = await fetch(`${base}${p}`, { method: init.method ?? 'GET', signal: AbortSignal.timeout(15_000) });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // non-JSON answer: keep the text
      }
      return { status: res.status, body: body as T };
    },
  };
}
