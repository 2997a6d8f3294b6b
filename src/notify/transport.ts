/**
 * @module HTTP delivery for notification services: global fetch with a per-request timeout, an overall deadline,
 * one retry per send for transient failures, capped response bodies and a test-only origin override.
 */

/** A message ready to send: `title` is used where the service has a title field. */
export interface NotificationMessage {
  title: string;
  body: string;
}

interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** A Buffer/Uint8Array body is sent without an implied Content-Type. */
  body?: string | Uint8Array;
}

export interface HttpResponse {
  status: number;
  /** Response body (capped), for service-specific success checks and error messages. */
  text: string;
}

/** Why a delivery failed. `retryable` marks transient causes (network, timeout, 5xx, 429). */
export class DeliveryError extends Error {
  readonly status: number | undefined;
  readonly retryable: boolean;
  constructor(message: string, opts: { status?: number; retryable: boolean; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'DeliveryError';
    this.status = opts.status;
    this.retryable = opts.retryable;
  }
}

/** Everything a service needs to deliver one message. One context = one send = at most one retry. */
export interface SendContext {
  /** Per request (HTTP call, SMTP session) timeout. */
  readonly timeoutMs: number;
  /** Aborts when the whole send runs past its deadline. */
  readonly signal: AbortSignal;
  /**
   * Sends one HTTP request; `check` returns null when the response means success, else a reason.
   * Resolves with the response on success, throws DeliveryError otherwise (after the retry, when allowed).
   */
  fetch(req: HttpRequest, check: (res: HttpResponse) => string | null): Promise<HttpResponse>;
  /** Runs `op` with the shared retry budget; `op` throws DeliveryError to report the failure kind. */
  withRetry<T>(op: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

export interface TransportOptions {
  timeoutMs: number;
  /** Total retries for the whole send (sendNotification uses one by default). */
  retries: number;
  retryDelayMs: number;
  /** Replaces scheme://host:port of every request URL (tests point fixed-host services at 127.0.0.1). */
  baseUrl?: string;
}

/** Cap on response bodies read: enough for any error JSON, bounded against hostile or broken endpoints. */
const MAX_BODY_BYTES = 64 * 1024;
const USER_AGENT = 'shiparr';

/** Creates the context for one send and reports how many attempts it used. */
export function createSendContext(opts: TransportOptions): { ctx: SendContext; attempts: () => number } {
  // Bound the whole send (multi-request services such as matrix) so one endpoint cannot stall a deploy's notify step.
  const deadline = AbortSignal.timeout(opts.timeoutMs * (opts.retries + 1) * 2 + opts.retryDelayMs * opts.retries);
  let retriesLeft = opts.retries;
  let attempts = 0;

  async function withRetry<T>(op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    for (;;) {
      attempts += 1;
      // The attempt's timeout is used again after the await on purpose: Node 20 may garbage-collect a timeout signal
      // that only an AbortSignal.any() composite refers to, and then it never fires (nodejs/node#57736).
      const timeout = AbortSignal.timeout(opts.timeoutMs);
      const signal = AbortSignal.any([deadline, timeout]);
      try {
        return await op(signal);
      } catch (err) {
        const failure = toDeliveryError(err, timeout, deadline, opts.timeoutMs);
        if (!failure.retryable || retriesLeft <= 0 || deadline.aborted) throw failure;
        retriesLeft -= 1;
        await sleep(opts.retryDelayMs, deadline);
      }
    }
  }

  async function fetchOnce(
    req: HttpRequest,
    check: (res: HttpResponse) => string | null,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const res = await fetch(rebase(req.url, opts.baseUrl), {
      method: req.method,
      headers: { 'User-Agent': USER_AGENT, ...req.headers },
      body: req.body,
      signal,
      // A redirect would silently turn a POST into a GET (and may carry credentials elsewhere): report it instead.
      redirect: 'manual',
    });
    const out: HttpResponse = { status: res.status, text: await readCapped(res) };
    const problem = check(out);
    if (problem !== null) {
      throw new DeliveryError(problem, { status: res.status, retryable: isRetryableStatus(res.status) });
    }
    return out;
  }

  const ctx: SendContext = {
    timeoutMs: opts.timeoutMs,
    signal: deadline,
    withRetry,
    fetch: (req, check) => withRetry((signal) => fetchOnce(req, check, signal)),
  };
  return { ctx, attempts: () => attempts };
}

/** 5xx, 408 and 429 may succeed later; other statuses will not. */
function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** The usual check: any 2xx is success; otherwise the status and the start of the body. */
export function expect2xx(res: HttpResponse): string | null {
  return res.status >= 200 && res.status < 300 ? null : httpProblem(res);
}

/** "HTTP 500: <first 200 chars of the body>" — the body is masked later with the URL's secrets. */
export function httpProblem(res: HttpResponse, detail?: string): string {
  const text = (detail ?? res.text).replace(/\s+/g, ' ').trim();
  return text ? `HTTP ${res.status}: ${text.slice(0, 200)}` : `HTTP ${res.status}`;
}

/** Parses a JSON response body, or undefined. */
export function jsonBody(res: HttpResponse): unknown {
  try {
    return JSON.parse(res.text) as unknown;
  } catch {
    return undefined;
  }
}

function rebase(url: string, baseUrl: string | undefined): string {
  if (!baseUrl) return url;
  const u = new URL(url);
  return baseUrl.replace(/\/+$/, '') + u.pathname + u.search;
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= MAX_BODY_BYTES) break;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8');
}

function toDeliveryError(err: unknown, timeout: AbortSignal, deadline: AbortSignal, timeoutMs: number): DeliveryError {
  if (err instanceof DeliveryError) return err;
  if (deadline.aborted) return new DeliveryError('send deadline exceeded', { retryable: false, cause: err });
  if (timeout.aborted) return new DeliveryError(`timed out after ${timeoutMs} ms`, { retryable: true, cause: err });
  // undici wraps network failures as TypeError("fetch failed") with a cause; other errors (e.g. an invalid header value)
  // are request-building bugs that a retry cannot fix.
  const network = err instanceof Error && err.cause !== undefined;
  return new DeliveryError(networkReason(err), { retryable: network, cause: err });
}

/** undici reports "fetch failed" with the useful part (ECONNREFUSED, ENOTFOUND, TLS…) in `cause`. */
function networkReason(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
