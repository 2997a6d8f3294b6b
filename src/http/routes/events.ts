/**
 * @module GET /api/events: Server-Sent Events. Every supervisor event is sent as `event: <type>` + `data: <json>`;
 * a comment line every heartbeat interval keeps proxies from closing an idle stream. A client too slow to read is
 * dropped (it reconnects by itself after `retry`) rather than letting its buffer grow without bound. At most
 * SHIPARR_MAX_SSE_CLIENTS streams are open at once; one more is answered 503 with `Retry-After`.
 */
import { PassThrough } from 'node:stream';
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { ActivityEvent } from '../../domain/types.ts';
import { maskSecrets } from '../../lib/redact.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { HttpDeps } from '../ports.ts';

/** Default heartbeat interval. */
const SSE_HEARTBEAT_MS = 15_000;
/** Reconnect delay suggested to clients. */
const SSE_RETRY_MS = 3_000;
/** Unsent bytes allowed per client before it is dropped. */
const MAX_BUFFERED = 1024 * 1024;
/** Open streams at most, by default (SHIPARR_MAX_SSE_CLIENTS). */
const DEFAULT_MAX_CLIENTS = 64;

/** The open streams of one app, so shutdown can end them. */
export interface EventStreams {
  closeAll(): void;
  readonly size: number;
}

/** Formats one event as an SSE frame (JSON never contains a raw newline, so one data line suffices). */
function sseFrame(e: ActivityEvent): string {
  // Events carry no secrets by construction; masking here too keeps a future free-text field from leaking one.
  return `event: ${e.type}\ndata: ${maskSecrets(JSON.stringify(e))}\n\n`;
}

export function eventRoutes(
  deps: Pick<HttpDeps, 'supervisor' | 'sseHeartbeatMs' | 'log' | 'limits'>,
  auth: Middleware,
): { router: Router; streams: EventStreams } {
  const router = new Router();
  const open = new Set<PassThrough>();
  let closed = false;
  const heartbeatMs = deps.sseHeartbeatMs ?? SSE_HEARTBEAT_MS;
  const maxClients = deps.limits?.maxSseClients ?? DEFAULT_MAX_CLIENTS;
  const streams: EventStreams = {
    closeAll() {
      closed = true;
      for (const s of open) s.end();
    },
    get size() {
      return open.size;
    },
  };

  router.use(auth);
  router.get('/api/events', (ctx) => {
    // Refused before anything is set up, so the 503 is a plain JSON answer.
    if (open.size >= maxClients)
      throw new ServiceUnavailableError(`too many open event streams (at most ${maxClients})`, SSE_RETRY_MS / 1000);
    const stream = new PassThrough();
    ctx.req.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.req.socket.setKeepAlive(true);
    ctx.status = 200;
    ctx.type = 'text/event-stream; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache, no-transform');
    ctx.set('Connection', 'keep-alive');
    // nginx and similar proxies buffer responses unless told otherwise.
    ctx.set('X-Accel-Buffering', 'no');
    ctx.body = stream;
    if (closed) {
      stream.end(`retry: ${SSE_RETRY_MS}\n\n`);
      return;
    }

    const send = (chunk: string): void => {
      if (stream.writableEnded || stream.destroyed) return;
      if (stream.writableLength > MAX_BUFFERED) {
        deps.log.warn({ path: ctx.path }, 'dropping a slow event-stream client');
        stream.end();
        return;
      }
      stream.write(chunk);
    };
    const unsubscribe = deps.supervisor.subscribe((e) => send(sseFrame(e)));
    const heartbeat = setInterval(() => send(`: heartbeat ${new Date().toISOString()}\n\n`), heartbeatMs);
    heartbeat.unref();
    let done = false;
    const cleanup = (): void => {
      if (done) return;
      done = true;
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(stream);
    };
    open.add(stream);
    stream.on('close', cleanup);
    stream.on('finish', cleanup);
    // res 'close' (not req 'close', which fires once a GET's empty body is read) means the client went away.
    ctx.res.on('close', () => {
      cleanup();
      stream.destroy();
    });
    send(`retry: ${SSE_RETRY_MS}\n: connected\n\n`);
  });
  return { router, streams };
}
