/**
 * @module HTTP-only errors and the error middleware that turns every failure into `{ error: { code, message } }`.
 * It runs first (as the Koa error-handling guide advises) so nothing downstream can leak a stack trace; only 5xx reach app.on('error').
 */
import type { Duplex } from 'node:stream';
import type { Context, Next } from 'koa';
import { AppError } from '../errors.ts';

/** An exposed HTTP error with a stable code (400, 401, 405, 413, 415, 429, and 503 for a refusal under load). */
class HttpError extends AppError {
  readonly code: string;
  override readonly status: number;
  override readonly expose = true;
  /** Extra response headers (WWW-Authenticate, Allow…). */
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** 400: malformed request (bad JSON, bad id, bad query value). */
export class BadRequestError extends HttpError {
  constructor(message: string, code = 'BAD_REQUEST') {
    super(400, code, message);
  }
}

/** 401 with the Basic challenge, or without one for webhook signatures. */
export class UnauthorizedError extends HttpError {
  constructor(message = 'authentication required', headers: Record<string, string> = {}) {
    super(401, 'UNAUTHORIZED', message, headers);
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(limit: number) {
    super(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`);
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  constructor(expected = 'application/json') {
    super(415, 'UNSUPPORTED_MEDIA_TYPE', `content type must be ${expected}`);
  }
}

/** 429 with `Retry-After` (seconds): the client address is blocked for a while. */
export class TooManyRequestsError extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, 'TOO_MANY_REQUESTS', message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
  }
}

/**
 * 503 with `Retry-After` (seconds): a capacity limit is reached (open event streams, webhooks in flight). A refusal,
 * not a fault: its message is shown and it is not logged as a server error.
 */
export class ServiceUnavailableError extends HttpError {
  constructor(message: string, retryAfterSeconds: number) {
    super(503, 'SERVICE_UNAVAILABLE', message, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
  }
}

/**
 * Answers an HTTP CONNECT (a proxy tunnel request, which Shiparr is not) with 405 and closes the connection. Node
 * hands CONNECT to the server's 'connect' event and, without a listener, closes the socket without any answer.
 */
export function refuseTunnel(socket: Duplex): void {
  const body = JSON.stringify(errorBody('METHOD_NOT_ALLOWED', 'CONNECT is not supported'));
  socket.on('error', () => undefined);
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Default codes for statuses that come from libraries (http-errors from koa-basic-auth, the router's 405/501). */
const STATUS_CODES: Record<number, [code: string, message: string]> = {
  400: ['BAD_REQUEST', 'bad request'],
  401: ['UNAUTHORIZED', 'authentication required'],
  403: ['FORBIDDEN', 'forbidden'],
  404: ['NOT_FOUND', 'not found'],
  405: ['METHOD_NOT_ALLOWED', 'method not allowed'],
  406: ['NOT_ACCEPTABLE', 'not acceptable'],
  408: ['REQUEST_TIMEOUT', 'request timeout'],
  409: ['CONFLICT', 'conflict'],
  413: ['PAYLOAD_TOO_LARGE', 'request body too large'],
  414: ['URI_TOO_LONG', 'URI too long'],
  415: ['UNSUPPORTED_MEDIA_TYPE', 'unsupported media type'],
  422: ['VALIDATION_FAILED', 'validation failed'],
  429: ['TOO_MANY_REQUESTS', 'too many requests'],
  431: ['HEADERS_TOO_LARGE', 'request headers too large'],
};

interface ErrorShape {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  code?: unknown;
  message?: unknown;
  headers?: unknown;
}

/** The JSON error body every failure is answered with. */
function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function statusOf(err: ErrorShape): number {
  const s = typeof err.status === 'number' ? err.status : typeof err.statusCode === 'number' ? err.statusCode : 500;
  return Number.isInteger(s) && s >= 400 && s <= 599 ? s : 500;
}

/**
 * Error middleware: the first middleware of the app. Answers thrown errors and empty 4xx/5xx responses (unknown route,
 * the router's 405) with the JSON error shape. Messages are shown only for errors marked `expose`; everything else
 * is "internal error" and emitted on the app for logging.
 */
export async function errorMiddleware(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
    if (ctx.body == null && ctx.status >= 400) {
      // The router's allowedMethods() answers 501 for methods it does not know at all (PROPFIND, …); for a client
      // that is the same mistake as any other wrong method on a known path.
      const status = ctx.status === 501 ? 405 : ctx.status;
      const [code, message] = STATUS_CODES[status] ?? ['ERROR', 'error'];
      ctx.status = status;
      ctx.body = errorBody(code, status === 404 ? `no route for ${ctx.method} ${ctx.path.slice(0, 200)}` : message);
    }
  } catch (caught) {
    const err = (caught ?? {}) as ErrorShape;
    const status = statusOf(err);
    const known = STATUS_CODES[status];
    // HttpError is always deliberate (a 503 from a capacity limit included); other 5xx are faults and stay hidden.
    const deliberate = caught instanceof HttpError;
    const exposed = deliberate || (status < 500 && (err instanceof AppError ? err.expose : err.expose === true));
    const code = exposed
      ? typeof err.code === 'string' && err.code !== '' && err instanceof AppError
        ? err.code
        : (known?.[0] ?? 'ERROR')
      : status >= 500
        ? 'INTERNAL'
        : (known?.[0] ?? 'ERROR');
    const message =
      exposed && typeof err.message === 'string' && err.message !== ''
        ? err.message
        : status >= 500
          ? 'internal error'
          : (known?.[1] ?? 'error');
    // Headers set before the failure (e.g. content-type of a half-built response) must not leak into the error reply.
    if (!ctx.headerSent) {
      for (const name of Object.keys(ctx.response.headers)) {
        if (
          !/^(access-control-|vary$|connection$|x-content-type-options$|x-frame-options$|referrer-policy$)/i.test(name)
        )
          ctx.remove(name);
      }
      if (err.headers && typeof err.headers === 'object') {
        for (const [k, v] of Object.entries(err.headers as Record<string, unknown>))
          if (typeof v === 'string') ctx.set(k, v);
      }
      ctx.status = status;
      ctx.body = errorBody(code, message);
    }
    if (status >= 500 && !deliberate) ctx.app.emit('error', caught, ctx);
  }
}
