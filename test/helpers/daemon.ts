/** @module Starts a real Shiparr daemon in-process on temp dirs, for end-to-end tests. */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadSettings } from '../../src/config/settings.ts';
import { startDaemon, type Daemon, type DaemonOptions } from '../../src/daemon/index.ts';
import { createLogger } from '../../src/logger.ts';
import type { ActivityEvent } from '../../src/domain/types.ts';
import {
  artifactPath,
  registerEnvSecrets,
  registerYamlSecrets,
  saveApiAnswers,
  saveDatabase,
  sweepAuthHeaders,
} from './secret-sweep.ts';
import { until } from './wait.ts';

export interface TestDaemon extends Daemon {
  configDir: string;
  dataDir: string;
  /** Writes (or replaces) a project file in the config dir. */
  writeProject(file: string, yaml: string): Promise<void>;
  /** Closes the daemon and removes its temp dirs. */
  dispose(): Promise<void>;
}

export async function startTestDaemon(
  opts: {
    projects?: Record<string, string>;
    env?: Record<string, string>;
    daemon?: Partial<DaemonOptions>;
    dirs?: { configDir: string; dataDir: string };
  } = {},
): Promise<TestDaemon> {
  const root = opts.dirs ? null : await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-'));
  const configDir = opts.dirs?.configDir ?? path.join(root as string, 'config');
  const dataDir = opts.dirs?.dataDir ?? path.join(root as string, 'data');
  await mkdir(configDir, { recursive: true });
  for (const [file, yaml] of Object.entries(opts.projects ?? {})) {
    registerYamlSecrets(file, yaml);
    await writeFile(path.join(configDir, file), yaml);
  }
  const env = {
    SHIPARR_CONFIG_PATH: configDir,
    SHIPARR_DATA_PATH: dataDir,
    SHIPARR_PORT: '0',
    SHIPARR_HOST: '127.0.0.1',
    SHIPARR_LOG_LEVEL: process.env.SHIPARR_TEST_LOG_LEVEL ?? 'silent',
    SHIPARR_WORKERS: '2',
    SHIPARR_SHUTDOWN_GRACE: '20',
    ...opts.env,
  };
  const settings = loadSettings(env);
  // Under the secret sweep the daemon logs everything (debug) into a file the sweep searches afterwards.
  const logFile = opts.env?.SHIPARR_LOG_LEVEL === undefined ? artifactPath('daemon.log') : undefined;
  const logDestination = logFile ? pino.destination({ dest: logFile, sync: false }) : undefined;
  const log = logDestination
    ? createLogger({ level: 'debug', format: 'json', destination: logDestination })
    : createLogger({ level: settings.logLevel, format: 'json' });
  registerEnvSecrets('daemon environment', env);
  const daemon = await startDaemon({ settings, env: { ...process.env, ...env }, log, watch: false, ...opts.daemon });
  return Object.assign(daemon, {
    configDir,
    dataDir,
    writeProject: (file: string, yaml: string) => {
      registerYamlSecrets(file, yaml);
      return writeFile(path.join(configDir, file), yaml);
    },
    dispose: async () => {
      if (daemon.url) await saveApiAnswers('daemon', daemon.url, sweepAuthHeaders(env));
      await daemon.close();
      saveDatabase('daemon', path.join(dataDir, 'shiparr.db'));
      try {
        logDestination?.flushSync();
      } catch {
        // Nothing was written yet (the stream never opened).
      }
      if (root) await rm(root, { recursive: true, force: true });
    },
  });
}

interface Subscribable {
  subscribe(listener: (e: ActivityEvent) => void): () => void;
}

/**
 * Counts the remote checks of repository `key` that complete from now on: the supervisor's `check` events (the same
 * signal as the `check` SSE event and `shiparr_checks_total`). A check already in flight when this is called may be
 * the first one counted, so a count of 2 means at least one whole check started after the call.
 */
export function countChecks(supervisor: Subscribable, key: string): { readonly count: number; stop(): void } {
  let count = 0;
  const stop = supervisor.subscribe((e) => {
    if (e.type === 'check' && e.repoKey === key) count += 1;
  });
  return {
    get count() {
      return count;
    },
    stop,
  };
}

/**
 * Resolves once `n` (default 2) checks of `key` have completed after the call. "Polling changed nothing" assertions
 * wait for this instead of sleeping: whatever the first of those checks would have started (a deployment row, a
 * compose run) has happened by the time the next one completes, because an actor runs one step at a time.
 */
export async function checksCompleted(supervisor: Subscribable, key: string, n = 2, timeoutMs = 60_000): Promise<void> {
  const checks = countChecks(supervisor, key);
  try {
    await until(() => checks.count >= n, `${n} completed checks of ${key}`, timeoutMs, 20);
  } finally {
    checks.stop();
  }
}
