/** @module `shiparr serve`: runs the daemon until SIGTERM/SIGINT; SIGHUP reloads the configuration. */
import type { Settings } from '../config/settings.ts';
import { createLogger } from '../logger.ts';
import { startDaemon, type Daemon } from '../daemon/index.ts';

export async function serveCommand(settings: Settings, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createLogger({ level: settings.logLevel, format: settings.logFormat });
  // The handlers are in place before startup: a SIGTERM that arrives while the daemon is still starting (recovery
  // sweep, watcher) waits for it to finish starting and then shuts it down cleanly instead of killing it mid-write.
  let daemon: Daemon | null = null;
  let stopping = false;
  let stopped: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (stopped = resolve));
  const close = (d: Daemon) =>
    d.close().then(
      () => stopped(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        stopped(1);
      },
    );
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, starting: daemon === null }, 'signal received');
    if (daemon) void close(daemon);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    if (!daemon) return log.info('SIGHUP during startup: the configuration is being read anyway');
    log.info('SIGHUP: reloading configuration');
    daemon.supervisor.reload().catch((err: unknown) => log.error({ err }, 'reload failed'));
  });
  log.info({ pid: process.pid }, 'Shiparr is starting');
  daemon = await startDaemon({ settings, env, log });
  if (stopping) void close(daemon);
  return done;
}
