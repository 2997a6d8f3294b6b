/**
 * @module Guards against cross-site use of the API. DNS rebinding: without authentication, only the configured host
 * names are answered (`createHostGuard`, before the routers). CSRF: a state-changing request must not come from
 * another site and must be JSON or carry `X-Shiparr-Request: 1` (`refuseCrossSite`, run by the auth middleware right
 * after authentication, so it covers every authenticated route and never the signature-checked webhooks).
 */
import os from 'node:os';
import type { Context, Middleware } from 'koa';
import { AppError } from '../errors.ts';
import { isJsonType } from './body.ts';
import { UnsupportedMediaTypeError } from './errors.ts';
import type { HttpDeps } from './ports.ts';

/** The header a non-JSON client (curl without a body, a script) sends to show it is not a browser form. */
const REQUEST_HEADER = 'X-Shiparr-Request';

const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
/** Liveness probes and monitors may use any host name (the report holds nothing a rebinding page could use). */
const HEALTH = '/api/health';

/** 403 with a stable code: the request came from the wrong place. */
class ForbiddenError extends AppError {
  readonly code: string;
  override readonly status = 403;
  override readonly expose = true;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Host name of a `Host` header value: lower case, port and IPv6 brackets removed, no trailing dot. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(h);
  const name = bracketed ? (bracketed[1] ?? '') : h.split(':').length === 2 ? (h.split(':')[0] ?? '') : h;
  return name.replace(/\.$/, '');
}

/** What the guard needs from the app's dependencies. */
type GuardDeps = Pick<HttpDeps, 'auth' | 'allowedHosts'>;

/** localhost, 127.0.0.1, ::1 and this machine's host name (the daemon passes the full list from its settings). */
function defaultHosts(): string[] {
  return ['localhost', '127.0.0.1', '::1', os.hostname().toLowerCase()];
}

/**
 * The DNS-rebinding guard: in auth mode none (and unless the list holds `*`), every route but /api/health answers only
 * requests whose Host header names an allowed host; anything else is 403 HOST_NOT_ALLOWED.
 */
export function createHostGuard(deps: GuardDeps): Middleware {
  const hosts = (deps.allowedHosts ?? defaultHosts()).map(hostName);
  const mode = deps.auth.mode ?? (deps.auth.enabled ? 'basic' : 'none');
  const checkHost = mode === 'none' && !hosts.includes('*');
  const allowed = new Set(hosts);
  return async (ctx, next) => {
    if (checkHost && ctx.path !== HEALTH && !allowed.has(hostName(ctx.get('host')))) {
      throw new ForbiddenError(
        'HOST_NOT_ALLOWED',
        'this host name is not in SHIPARR_ALLOWED_HOSTS (requests without authentication must name an allowed host)',
      );
    }
    await next();
  };
}

/**
 * For POST/PUT/DELETE/PATCH: throws 403 CROSS_SITE_REQUEST unless Sec-Fetch-Site (when sent) is same-origin or none
 * and an Origin header (when sent) names the request's own host, and 415 unless the request is JSON or carries
 * `X-Shiparr-Request: 1`. Other methods pass.
 */
export function refuseCrossSite(ctx: Context): void {
  if (!STATE_CHANGING.has(ctx.method)) return;
  const site = ctx.get('sec-fetch-site').toLowerCase();
  if (site !== '' && site !== 'same-origin' && site !== 'none') {
    throw new ForbiddenError('CROSS_SITE_REQUEST', `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 20)})`);
  }
  const origin = ctx.get('origin');
  if (origin !== '' && originHost(origin) !== ctx.get('host').trim().toLowerCase()) {
    throw new ForbiddenError('CROSS_SITE_REQUEST', 'cross-site request refused (Origin is not this host)');
  }
  // A browser form can only send urlencoded, multipart or text/plain, and cannot add headers; JSON or the custom
  // header forces a CORS preflight, which this API does not grant.
  if (ctx.get(REQUEST_HEADER) !== '1' && !isJsonType(ctx.get('content-type'))) {
    throw new UnsupportedMediaTypeError(`application/json (or send the header ${REQUEST_HEADER}: 1)`);
  }
}

/** `host[:port]` of an Origin header, lower case; null for `null` or anything unparsable. */
function originHost(origin: string): string | null {
  try {
    const u = new URL(origin);
    return u.host === '' ? null : u.host.toLowerCase();
  } catch {
    return null;
  }
}
