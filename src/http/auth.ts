/**
 * @module Who is calling: Basic Auth, forward auth (a user header set by a trusted reverse proxy) or none, plus API
 * tokens (`Authorization: Bearer …`) in every mode. The authenticated principal (`user:<name>`, `token:<name>`) is
 * left in `ctx.state.principal` for the audit trail. Every secret comparison is constant-time: koa-basic-auth uses
 * tsscmp, tokens are compared as SHA-256 digests with timingSafeEqual, all of them every time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { Context, Middleware } from 'koa';
import basicAuth from 'koa-basic-auth';
import { UnauthorizedError } from './errors.ts';
import { refuseCrossSite } from './guard.ts';
import type { HttpDeps } from './ports.ts';

/** The realm browsers show in their login prompt. */
const AUTH_REALM = 'Shiparr';

/** Longest user name taken from the forward-auth header (printable ASCII, no control characters). */
const FORWARD_USER = /^[\x21-\x7e][\x20-\x7e]{0,127}$/;

type AuthSettings = HttpDeps['auth'];

/** The effective auth mode of `auth` (`mode`, or basic when the older `enabled` switch is on). */
function authMode(auth: AuthSettings): 'basic' | 'forward' | 'none' {
  return auth.mode ?? (auth.enabled ? 'basic' : 'none');
}

/** The principal the auth middleware recorded for this request (`user:…`, `token:…`), if any. */
function principalOf(ctx: Context): string | undefined {
  const p = (ctx.state as { principal?: unknown }).principal;
  return typeof p === 'string' ? p : undefined;
}

/** `{ triggeredBy }` for supervisor commands, or nothing when the caller is anonymous (auth mode none). */
export function auditOf(ctx: Context): { triggeredBy?: string } {
  const p = principalOf(ctx);
  return p === undefined ? {} : { triggeredBy: p };
}

/** Returns the token's name when `presented` equals one of `tokens`; looks at every token whatever it finds. */
function tokenMatcher(tokens: readonly { name: string; token: string }[]): (presented: string) => string | null {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  const known = tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  return (presented) => {
    const d = digest(presented);
    let found: string | null = null;
    for (const t of known) if (timingSafeEqual(d, t.digest) && found === null) found = t.name;
    return found;
  };
}

/** A predicate over TCP peer addresses: inside one of `cidrs` (IPv4, IPv6, IPv4-mapped IPv6 peers included). */
export function addressMatcher(cidrs: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr = '', prefix] = cidr.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(addr) === 0) throw new Error(`not an IP address or CIDR block: ${JSON.stringify(cidr.slice(0, 60))}`);
    if (prefix === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(prefix), family);
  }
  return (address) => {
    if (!address) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1] && list.check(mapped[1], 'ipv4')) return true;
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * Middleware that authenticates API callers according to `auth`, or lets everyone through in mode none (a valid
 * bearer token is still recorded as the principal; an invalid one is refused), then refuses cross-site and non-JSON
 * state-changing requests (guard.ts). Throws on an unusable setup.
 */
export function createAuth(auth: AuthSettings): Middleware {
  const mode = authMode(auth);
  const matchToken = tokenMatcher(auth.tokens ?? []);
  let byMode: Middleware;
  if (mode === 'basic') {
    if (!auth.password) throw new Error('HTTP auth is enabled but no password is set (SHIPARR_AUTH_PASSWORD)');
    if (!auth.username) throw new Error('HTTP auth is enabled but no username is set (SHIPARR_AUTH_USERNAME)');
    // The realm option exists in koa-basic-auth 4 but not in its type definitions.
    const options = { name: auth.username, pass: auth.password, realm: AUTH_REALM } as Parameters<typeof basicAuth>[0];
    const basic = basicAuth(options);
    const principal = `user:${auth.username}`;
    byMode = (ctx, next) =>
      basic(ctx, () => {
        ctx.state['principal'] = principal;
        return next();
      });
  } else if (mode === 'forward') {
    const trusted = addressMatcher(auth.trustedProxies ?? []);
    const header = auth.forwardHeader ?? 'Remote-User';
    byMode = (ctx, next) => {
      // The header counts only on a connection from a trusted proxy; from anywhere else anyone could set it.
      const user = ctx.get(header).trim();
      if (!trusted(ctx.req.socket.remoteAddress) || !FORWARD_USER.test(user)) throw new UnauthorizedError();
      ctx.state['principal'] = `user:${user}`;
      return next();
    };
  } else {
    byMode = (_ctx, next) => next();
  }
  const guarded = (ctx: Context, next: () => Promise<unknown>) => {
    refuseCrossSite(ctx);
    return next();
  };
  return (ctx, next) => {
    // Any Bearer header is a token attempt, in every mode: an empty or unknown one is refused, never anonymous.
    const bearer = /^bearer(?:[ \t]+(.*))?$/i.exec(ctx.get('authorization'));
    if (bearer) {
      const presented = (bearer[1] ?? '').trim();
      const name = presented === '' ? null : matchToken(presented);
      if (name === null)
        throw new UnauthorizedError('invalid API token', {
          'WWW-Authenticate': `Bearer realm="${AUTH_REALM}", error="invalid_token"`,
        });
      ctx.state['principal'] = `token:${name}`;
      return guarded(ctx, next);
    }
    return byMode(ctx, () => guarded(ctx, next));
  };
}
