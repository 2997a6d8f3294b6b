/** @module Gotify (Shoutrrr `gotify://HOST[:PORT][/SUBPATH]/APPTOKEN`): POST /message with JSON. */
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import { expect2xx, type NotificationMessage, type SendContext } from '../transport.ts';
import { MASKED, aliases, pickTitle } from './common.ts';

export interface GotifyConfig {
  service: 'gotify';
  /** host[:port] */
  host: string;
  /** '' or '/sub/path' (no trailing slash). */
  subPath: string;
  token: string;
  title?: string;
  priority: number;
  disableTls: boolean;
  /** Fork option: send the token as `X-Gotify-Key` instead of the query (keeps it out of proxy logs). */
  useHeader: boolean;
  secrets: string[];
}

const OPTIONS = aliases({ title: [], priority: [], disabletls: [], useheader: [] });
/** Gotify application tokens: 15 characters starting with "A" (what Gotify generates; Shoutrrr checks the same). */
const TOKEN = /^A[A-Za-z0-9._-]{14}$/;

export function parseGotify(u: URL): GotifyConfig {
  if (!u.host) throw new NotificationUrlError('gotify: missing host (gotify://HOST/APPTOKEN)');
  const segments = u.pathname
    .split('/')
    .filter(Boolean)
    .map((s) => decodePart('gotify', s, 'path'));
  const token = segments.pop();
  if (!token) throw new NotificationUrlError('gotify: missing application token (gotify://HOST/APPTOKEN)');
  if (!TOKEN.test(token))
    throw new NotificationUrlError('gotify: the application token must be 15 characters starting with "A"');
  const o = new UrlOptions('gotify', u.searchParams, OPTIONS);
  return {
    service: 'gotify',
    host: u.host,
    subPath: segments.map((s) => `/${encodeURIComponent(s)}`).join(''),
    token,
    ...(o.has('title') ? { title: o.str('title') } : {}),
    priority: o.int('priority', 0),
    disableTls: o.bool('disabletls', false),
    useHeader: o.bool('useheader', false),
    secrets: [token],
  };
}

export function maskGotify(u: URL): void {
  const segments = u.pathname.split('/');
  let last = segments.length - 1;
  while (last > 0 && segments[last] === '') last -= 1;
  if (last > 0) segments[last] = MASKED;
  u.pathname = segments.join('/');
}

export async function sendGotify(cfg: GotifyConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const base = `${cfg.disableTls ? 'http' : 'https'}://${cfg.host}${cfg.subPath}/message`;
  const url = cfg.useHeader ? base : `${base}?token=${encodeURIComponent(cfg.token)}`;
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (cfg.useHeader) headers['X-Gotify-Key'] = cfg.token;
  const body = JSON.stringify({
    message: msg.body,
    title: pickTitle(cfg.title, msg.title) || 'Shiparr notification',
    priority: cfg.priority,
  });
  await ctx.fetch({ method: 'POST', url, headers, body }, expect2xx);
}
