/**
 * @module Basic Auth for the API. koa-basic-auth compares with tsscmp (HMAC both sides with a random key, then
 * timingSafeEqual), so the check is constant-time in the secret; it answers 401 with `WWW-Authenticate`.
 */
import type { Middleware } from 'koa';
import basicAuth from 'koa-basic-auth';
import type { HttpDeps } from './ports.ts';

/** The realm browsers show in their login prompt. */
const AUTH_REALM = 'Shiparr';

/** Middleware that enforces Basic Auth, or a pass-through when auth is disabled. Throws on an unusable setup. */
export function createAuth(auth: HttpDeps['auth']): Middleware {
  if (!auth.enabled) return (_ctx, next) => next();
  if (!auth.password) throw new Error('HTTP auth is enabled but no password is set (SHIPARR_AUTH_PASSWORD)');
  if (!auth.username) throw new Error('HTTP auth is enabled but no username is set (SHIPARR_AUTH_USERNAME)');
  // The realm option exists in koa-basic-auth 4 but not in its type definitions.
  const options = { name: auth.username, pass: auth.password, realm: AUTH_REALM } as Parameters<typeof basicAuth>[0];
  return basicAuth(options);
}
