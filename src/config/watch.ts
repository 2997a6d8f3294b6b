/**
 * @module Watches SHIPARR_CONFIG_PATH with chokidar and calls `onChange` once per burst of edits (debounced);
 * reloads that overlap are serialised by the supervisor, not here.
 * Atomic-save editors (write temp + rename) and renames show up as add/unlink pairs; the debounce folds them.
 */
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';

export interface ConfigWatcher {
  /**
   * Resolves once the initial scan is done: only changes after this point are reported (changes made between
   * loading the config and this point are not, so the caller should reload once when it resolves).
   */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const PROJECT_FILE = /\.ya?ml$/i;

export function watchConfigDir(
  dir: string,
  onChange: () => Promise<unknown> | void,
  opts: { log: Logger; debounceMs?: number },
): ConfigWatcher {
  const debounceMs = opts.debounceMs ?? 300;
  let timer: NodeJS.Timeout | null = null;
  // One call per burst; calls do not overlap only if `onChange` serialises itself (the supervisor's reload does).
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      Promise.resolve()
        .then(onChange)
        .catch((err: unknown) => opts.log.error({ err }, 'config reload failed'));
    }, debounceMs);
  };
  const watcher: FSWatcher = watch(dir, {
    ignoreInitial: true,
    depth: 0,
    awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
    ignored: (p: string, stats?: { isFile(): boolean }) => Boolean(stats?.isFile() && !PROJECT_FILE.test(p)),
  });
  watcher.on('all', (event, file) => {
    if (file !== dir && !PROJECT_FILE.test(file)) return;
    opts.log.debug({ event, file }, 'config change');
    schedule();
  });
  watcher.on('error', (err) => opts.log.error({ err }, 'config watcher error'));
  // An error during the initial scan must not leave the caller waiting forever.
  const ready = new Promise<void>((resolve) => {
    watcher.once('ready', () => resolve());
    watcher.once('error', () => resolve());
  });
  return {
    ready,
    async close() {
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
