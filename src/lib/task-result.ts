/**
 * @module The result contract of every worker task, and of the git/compose/secrets code the tasks wrap. Lives in the
 * bottom layer so that those modules need not import workers/. Plain data (structured clone); expected failures are
 * results, never throws.
 */

/** A task's outcome. `ok:false` is an expected failure (bad compose file, network down, wrong key…). */
export type TaskResult<T> =
  | ({ ok: true; durationMs: number } & T)
  | {
      ok: false;
      durationMs: number;
      /** Stable machine code, e.g. GIT_UNREACHABLE, COMPOSE_UP_FAILED, SOPS_MAC_MISMATCH. */
      code: string;
      /** One-line human reason, free of secrets. */
      message: string;
      /** Network/engine problems worth retrying with backoff. */
      transient: boolean;
      /** Captured, capped tool output (compose stderr…), free of secrets. */
      output?: string;
    };
