/**
 * @module Followed logs (`?follow=1`) of containers and of Swarm services: the stream is sent as text/plain (chunked)
 * until the client leaves or the source ends. One budget per app for both kinds: at most SHIPARR_MAX_SSE_CLIENTS
 * follows are open at once (one more is 503 with Retry-After), and all are closed when the app's signal aborts.
 */
import type { Readable } from 'node:stream';
import type { Context } from 'koa';
import { ServiceUnavailableError } from './errors.ts';
import type { HttpDeps } from './ports.ts';

/** Open follows at most, by default (the SSE client cap's default). */
const DEFAULT_MAX_FOLLOWS = 64;
/** Retry-After of a refused follow (seconds). */
const FOLLOW_RETRY_SECONDS = 3;

type FollowDeps = Pick<HttpDeps, 'limits' | 'signal'>;
const budgets = new WeakMap<FollowDeps, Set<AbortController>>();

/** The open follows of an app (keyed by the deps object the app hands to every route file: one shared set). */
function budgetOf(deps: FollowDeps): Set<AbortController> {
  let set = budgets.get(deps);
  if (!set) {
    const fresh = new Set<AbortController>();
    deps.signal?.addEventListener('abort', () => {
      for (const f of fresh) f.abort();
    });
    budgets.set(deps, (set = fresh));
  }
  return set;
}

/**
 * Answers `ctx` with the stream `open` gives (null or a string: `notFound()` is thrown). `what` names the source in
 * the 503 when following is not possible (`open` undefined, or the app is shutting down).
 */
export async function followLogs(
  ctx: Context,
  deps: FollowDeps,
  what: string,
  open: ((signal: AbortSignal) => Promise<Readable | string | null>) | undefined,
  notFound: () => Error,
): Promise<void> {
  const follows = budgetOf(deps);
  const max = deps.limits?.maxSseClients ?? DEFAULT_MAX_FOLLOWS;
  if (!open || deps.signal?.aborted)
    throw new ServiceUnavailableError(`following ${what} is not available`, FOLLOW_RETRY_SECONDS);
  if (follows.size >= max)
    throw new ServiceUnavailableError(`too many log follows open (at most ${max})`, FOLLOW_RETRY_SECONDS);
  const ac = new AbortController();
  follows.add(ac);
  const done = () => {
    follows.delete(ac);
    ac.abort();
  };
  let stream;
  try {
    stream = await open(ac.signal);
  } catch (err) {
    done();
    throw err;
  }
  if (stream === null || typeof stream === 'string') {
    done();
    throw notFound();
  }
  ctx.req.setTimeout(0);
  ctx.set('Cache-Control', 'no-cache, no-transform');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = stream;
  stream.on('close', done);
  ctx.res.on('close', () => {
    done();
    stream.destroy();
  });
}
