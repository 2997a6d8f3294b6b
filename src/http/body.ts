/**
 * @module Request bodies: raw bytes with a hard size limit (webhook HMACs need the exact bytes) and strict JSON on top.
 * A few lines instead of a body-parser dependency, because the raw buffer must be kept and the limit must hold for
 * chunked uploads that announce no Content-Length.
 */
import type { Context } from 'koa';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';

/** Largest accepted request body (webhook pushes with many commits stay far below this). */
export const BODY_LIMIT = 1024 * 1024;

/**
 * Reads the whole request body. Rejects with 413 as soon as the announced or received size passes `limit`, and
 * stops reading (the connection is closed after the answer, so a huge upload cannot keep the socket busy).
 */
export async function readRawBody(ctx: Context, limit = BODY_LIMIT): Promise<Buffer> {
  const announced = ctx.request.length;
  if (announced !== undefined && announced > limit) {
    ctx.set('Connection', 'close');
    throw new PayloadTooLargeError(limit);
  }
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
        ctx.set('Connection', 'close');
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
