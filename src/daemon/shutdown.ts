/**
 * @module The ordered shutdown: config watcher, HTTP (event streams, connections), the actors with a grace period
 * for running deployments, commit statuses still under way (a short grace, then dropped and recorded), the worker
 * pool, and last the database. Runs once, whoever calls it how often.
 */
import type { Logger } from 'pino';
import type { ConfigWatcher } from '../config/watch.ts';
import type { HttpServer } from './http.ts';

/** How long commit statuses under way may still take at shutdown. */
const STATUS_GRACE_MS = 5_000;

/** What is closed, in this order; `http` and `watcher` are null when the daemon runs without them. */
export interface Closeables {
  log: Logger;
  watcher: ConfigWatcher | null;
  http: HttpServer | null;
  supervisor: { stop(graceMs: number): Promise<unknown> };
  graceMs: number;
  /** The commit-status queue: gets at most {@link STATUS_GRACE_MS} (and never more than `graceMs`). */
  statuses?: { close(graceMs: number): Promise<void> };
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
      await parts.statuses?.close(Math.min(STATUS_GRACE_MS, parts.graceMs));
      await parts.pool.destroy();
      parts.store.close();
      parts.log.info('stopped');
    })());
}
