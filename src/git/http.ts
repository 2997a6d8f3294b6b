/** @module isomorphic-git's Node HTTP client bound to an AbortSignal, and the deadline every git task runs under. */
import nodeHttp from 'isomorphic-git/http/node';
import type { HttpClient } from 'isomorphic-git/http/node';
import http from 'node:http';
import https from 'node:https';
import { GitError } from './errors.ts';

// No keep-alive: polls are minutes apart, longer than any server's keep-alive timeout, so a pooled socket is almost
// always stale by the next check and Node's global agent (keep-alive since Node 19) fails it with "socket hang up".
const agents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

/** An HttpClient whose every request (and response body) is aborted with `signal`. */
export function abortableHttp(signal: AbortSignal): HttpClient {
  return {
    request(req) {
      signal.throwIfAborted();
      const agent = req.url.startsWith('https:') ? agents.https : agents.http;
      return nodeHttp.request({ ...req, agent, signal });
    },
  };
}

/**
 * Runs `fn` with a signal aborted after `timeoutMs`, and rejects with GIT_TIMEOUT (transient) at that moment even if
 * `fn` has not settled yet: an aborted socket does not always end isomorphic-git's body iterator.
 */
export async function withDeadline<T>(
  timeoutMs: number,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new GitError('GIT_INVALID_INPUT', `timeoutMs must be a positive number`);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new GitError('GIT_TIMEOUT', `${what} timed out after ${timeoutMs} ms`, { transient: true });
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    // race() subscribes to fn's promise, so its later rejection (after the deadline) is not unhandled.
    return await Promise.race([fn(controller.signal), deadline]);
  } catch (err) {
    if (controller.signal.aborted) throw controller.signal.reason as GitError;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
