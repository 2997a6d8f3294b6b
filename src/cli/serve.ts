/** @module `shiparr serve`: runs the daemon until SIGTERM/SIGINT; SIGHUP reloads the configuration. */
import type { Settings } from '../config/settings.ts';
import { createLogger } from '../logger.ts';
import { startDaemon } from '../daemon/index.ts';

export async function serveCommand(settings: Settings, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createLogger({ level: settings.logLevel, format: settings.logFormat });
  const daemon = await startDaemon({ settings, env, log });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'signal received');
      daemon.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => {
      log.info('SIGHUP: reloading configuration');
      daemon.supervisor.reload().catch((err: unknown) => log.error({ err }, 'reload failed'));
    });
  });
}
