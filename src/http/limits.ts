/**
 * @module Abuse limits of the HTTP app: the failed-authentication limiter (brute force on Basic credentials and on
 * webhook signatures) and a small in-flight counter. The limiter does not know how authentication is done: it
 * observes answers. Every 401 a client address receives counts as one failure; after `maxFailures` within the window
 * the address is answered 429 with `Retry-After` for `blockSeconds`, before any other middleware runs, so correct
 * credentials from that address are refused too. Memory is bounded: at most `maxAddresses` addresses are tracked,
 * the least recently failed one is forgotten first.
 */
import type { Context, Middleware, Next } from 'koa';
import { ServiceUnavailableError, TooManyRequestsError } from './errors.ts';
import type { HttpDeps } from './ports.ts';

/** Failed authentications allowed per address within the window (SHIPARR_AUTH_MAX_FAILURES). */
const DEFAULT_AUTH_MAX_FAILURES = 20;
/** Seconds an address stays blocked (SHIPARR_AUTH_BLOCK_SECONDS). */
const DEFAULT_AUTH_BLOCK_SECONDS = 60;
/** Window in which failures are counted. */
const FAILURE_WINDOW_MS = 60_000;
/** Addresses tracked at most (each entry is a few numbers). */
const MAX_ADDRESSES = 10_000;

interface Entry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
}

/**
 * Liveness probes without credentials are never refused: an orchestrator must not restart Shiparr because a client
 * misbehaved. With credentials they are (the detailed report would otherwise let a blocked address keep guessing).
 */
function exempt(ctx: Context): boolean {
  return ctx.path === '/api/health' && ctx.get('authorization') === '';
}

function statusOf(err: unknown): number {
  if (err === null || typeof err !== 'object') return 500;
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  return typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : 500;
}

/**
 * Middleware that counts 401 answers per client address (`ctx.ip`) and refuses a blocked address with 429 (except
 * /api/health without credentials). Mount it after the error middleware and before the routes, so thrown 401s
 * (Basic Auth, webhook signatures) pass through it. `test.maxAddresses` lowers the address cap for tests.
 */
export function createFailureLimiter(
  deps: Pick<HttpDeps, 'log' | 'limits'>,
  test: { maxAddresses?: number } = {},
): Middleware {
  const maxFailures = deps.limits?.authMaxFailures ?? DEFAULT_AUTH_MAX_FAILURES;
  const blockMs = (deps.limits?.authBlockSeconds ?? DEFAULT_AUTH_BLOCK_SECONDS) * 1000;
  const maxAddresses = test.maxAddresses ?? MAX_ADDRESSES;
  const now = Date.now;
  const log = deps.log.child({ component: 'http' });
  const entries = new Map<string, Entry>();

  const makeRoom = (t: number): void => {
    if (entries.size < maxAddresses) return;
    for (const [key, e] of entries) {
      if (e.blockedUntil <= t && t - e.windowStart > FAILURE_WINDOW_MS) entries.delete(key);
    }
    // Still full: forget the least recently failed address (Map keeps insertion order; record() re-inserts).
    while (entries.size >= maxAddresses) {
      const oldest = entries.keys().next();
      if (oldest.done) break;
      entries.delete(oldest.value);
    }
  };

  const record = (address: string, path: string): void => {
    const t = now();
    let e = entries.get(address);
    if (e) entries.delete(address);
    else makeRoom(t);
    if (!e || t - e.windowStart > FAILURE_WINDOW_MS)
      e = { windowStart: t, failures: 0, blockedUntil: e?.blockedUntil ?? 0 };
    e.failures += 1;
    if (e.failures >= maxFailures && e.blockedUntil <= t) {
      e.blockedUntil = t + blockMs;
      // One line per block; the address and the count, never what was sent.
      log.warn(
        {
          ip: address,
          failures: e.failures,
          windowSeconds: FAILURE_WINDOW_MS / 1000,
          blockSeconds: blockMs / 1000,
          path,
        },
        'too many failed authentications: address blocked',
      );
      e.failures = 0;
      e.windowStart = t;
    }
    entries.set(address, e);
  };

  return async (ctx: Context, next: Next) => {
    const address = ctx.ip || 'unknown';
    const blockedUntil = entries.get(address)?.blockedUntil ?? 0;
    const t = now();
    if (blockedUntil > t && !exempt(ctx)) {
      throw new TooManyRequestsError('too many failed authentications from this address', (blockedUntil - t) / 1000);
    }
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } catch (err) {
      status = statusOf(err);
      throw err;
    } finally {
      if (status === 401) record(address, ctx.path.slice(0, 200));
    }
  };
}

/** A counter of work in progress with a ceiling: `enter()` throws 503 + `Retry-After` when `max` are running. */
export interface InFlight {
  /** Takes a slot; the returned function gives it back (call it exactly once, in a `finally`). */
  enter(): () => void;
}

/** Creates an in-flight counter; `what` names the work in the 503 message. */
export function inFlightLimit(max: number, what: string, retryAfterSeconds: number): InFlight {
  let size = 0;
  return {
    enter() {
      if (size >= max) throw new ServiceUnavailableError(`too many ${what} in progress`, retryAfterSeconds);
      size += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        size -= 1;
      };
    },
  };
}
