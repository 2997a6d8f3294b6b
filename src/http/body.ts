/**
 * @module Request bodies: raw bytes with a hard size limit (webhook HMACs need the exact bytes) and strict JSON on top.
 * A few lines instead of a body-parser dependency, because the raw buffer must be kept and the limit must hold for
 * chunked uploads that announce no Content-Length. Bodies nobody read (a refused request: 401, 404, 405, 413, 429…)
 * are drained up to the limit and the connection is then closed gracefully, so the client always gets its status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context, Next } from 'koa';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';

/** Largest accepted request body (webhook pushes with many commits stay far below this). */
export const BODY_LIMIT = 1024 * 1024;

/** How long a connection whose body passed the drain budget keeps being read (and discarded) after its answer. */
const LINGER_MS = 5_000;

/**
 * Reads the whole request body. Rejects with 413 as soon as the announced or received size passes `limit`, and
 * stops reading (drainUnreadBody() then discards the rest and closes the connection after the answer).
 */
export async function readRawBody(ctx: Context, limit = BODY_LIMIT): Promise<Buffer> {
  const announced = ctx.request.length;
  if (announced !== undefined && announced > limit) throw new PayloadTooLargeError(limit);
  const req = ctx.req;
  if (req.readableEnded) return Buffer.alloc(0);
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new PayloadTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new BadRequestError(`could not read request body: ${err.message}`, 'BODY_READ_FAILED'));
    };
    const onClose = (): void => {
      // 'close' before 'end': the client went away mid-upload.
      if (!req.readableEnded) {
        cleanup();
        reject(new BadRequestError('request body aborted', 'BODY_READ_FAILED'));
      }
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** true for application/json and application/*+json (charset parameters allowed). */
export function isJsonType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** Parses JSON bytes; 400 with a short reason (no echo of the body) when they are not valid UTF-8 JSON. */
export function parseJson(raw: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new BadRequestError('request body is not valid UTF-8', 'INVALID_JSON');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadRequestError('request body is not valid JSON', 'INVALID_JSON');
  }
}

/**
 * Reads an optional JSON body: an empty body is `undefined`; a non-empty one must be JSON (415 otherwise) and parse
 * (400 otherwise).
 */
export async function readOptionalJson(ctx: Context): Promise<unknown> {
  // Refuse a non-JSON body before reading it, so a wrong upload costs nothing.
  const hasBody = (ctx.request.length ?? 0) > 0 || ctx.get('transfer-encoding') !== '';
  if (hasBody && !isJsonType(ctx.get('content-type'))) throw new UnsupportedMediaTypeError();
  const raw = await readRawBody(ctx);
  if (raw.length === 0) return undefined;
  if (!isJsonType(ctx.get('content-type'))) throw new UnsupportedMediaTypeError();
  return parseJson(raw);
}

function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.readableEnded || req.destroyed) return false;
  const length = Number(req.headers['content-length'] ?? 0);
  return (Number.isFinite(length) && length > 0) || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Discards what is left of a request body once its answer is decided. Up to `budget` bytes the connection stays
 * usable (keep-alive). Past that, the connection is closed gracefully after the answer: our side is half-closed
 * (FIN, the client reads the answer and end-of-stream) while incoming bytes keep being read and discarded for
 * LINGER_MS, then the socket is destroyed. Closing at once would make the kernel answer the client's remaining bytes
 * with a reset, and a client still writing would see EPIPE/ECONNRESET instead of the status.
 */
function drain(req: IncomingMessage, res: ServerResponse, budget: number): void {
  const socket = req.socket;
  let received = 0;
  let closing = false;
  const closeGracefully = (): void => {
    if (socket.destroyed) return;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (closing || received <= budget) return;
    closing = true;
    if (res.writableFinished) closeGracefully();
    else res.once('finish', closeGracefully);
  });
  // Parse errors surface on the server ('clientError'); the request stream's own error needs no action here.
  req.on('error', () => undefined);
  req.resume();
}

/**
 * Middleware (mount first, before the error middleware): after the answer is decided, a request body that was not
 * read is drained up to `budget` bytes, then the connection is closed gracefully (see drain()). Without it a large
 * body sent to a refused route was either read without bound (keep-alive) or cut off with a reset (413).
 */
export function drainUnreadBody(budget = BODY_LIMIT) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
    } finally {
      if (hasUnreadBody(ctx.req)) drain(ctx.req, ctx.res, budget);
    }
  };
}
