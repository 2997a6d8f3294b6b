/**
 * @module The ordered shutdown: config watcher, HTTP (event streams, connections), the actors with a grace period
 * for running deployments, the worker pool, and last the database. Runs once, whoever calls it how often.
 */
import type { Logger } from 'pino';
import type { ConfigWatcher } from '../config/watch.ts';
import type { HttpServer } from './http.ts';

/** What is closed, in this order; `http` and `watcher` are null when the daemon runs without them. */
export interface Closeables {
  log: Logger;
  watcher: ConfigWatcher | null;
  http: HttpServer | null;
  supervisor: { stop(graceMs: number): Promise<unknown> };
  graceMs: number;
  pool: { destroy(): Promise<unknown> };
  store: { close(): void };
}

/** A close function for the daemon: the first call shuts down, later calls return the same promise. */
export function shutdownOnce(parts: Closeables): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () =>
    (closing ??= (async () => {
      parts.log.info('shutting down');
      await parts.watcher?.close();
      await parts.http?.close();
      await parts.supervisor.stop(parts.graceMs);
      await parts.pool.destroy();
      parts.store.close();
      parts.log.info('stopped');
    })());
}
