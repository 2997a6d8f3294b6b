/** @module Pushover (Shoutrrr `pushover://shoutrrr:API_TOKEN@USER_KEY/?devices=…`): form POST to messages.json. */
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import { httpProblem, jsonBody, type HttpResponse, type NotificationMessage, type SendContext } from '../transport.ts';
import { MASKED, aliases, maskUserinfo, pickTitle } from './common.ts';

export interface PushoverConfig {
  service: 'pushover';
  token: string;
  user: string;
  devices: string[];
  title?: string;
  priority?: number;
  secrets: string[];
}

const OPTIONS = aliases({ devices: [], title: [], priority: [] });

export function parsePushover(u: URL): PushoverConfig {
  const token = decodePart('pushover', u.password, 'token');
  const user = decodePart('pushover', u.hostname, 'user key');
  if (!token) throw new NotificationUrlError('pushover: missing API token (pushover://shoutrrr:API_TOKEN@USER_KEY/)');
  if (!user) throw new NotificationUrlError('pushover: missing user key (pushover://shoutrrr:API_TOKEN@USER_KEY/)');
  const o = new UrlOptions('pushover', u.searchParams, OPTIONS);
  return {
    service: 'pushover',
    token,
    user,
    devices: o.list('devices'),
    ...(o.has('title') ? { title: o.str('title') } : {}),
    ...(o.has('priority') ? { priority: o.int('priority', 0) } : {}),
    secrets: [token, user],
  };
}

export function maskPushover(u: URL): void {
  maskUserinfo(u, { pass: true });
  if (u.hostname) u.hostname = MASKED;
}

function pushoverForm(cfg: PushoverConfig, msg: NotificationMessage): URLSearchParams {
  const form = new URLSearchParams({
    token: cfg.token,
    user: cfg.user,
    message: msg.body,
    device: cfg.devices.join(','),
  });
  const title = pickTitle(cfg.title, msg.title);
  if (title) form.set('title', title);
  // 2 (emergency) needs retry/expire, which Shoutrrr never sends; it is left out like there.
  if (cfg.priority !== undefined && cfg.priority >= -2 && cfg.priority <= 1) form.set('priority', String(cfg.priority));
  return form;
}

export async function sendPushover(cfg: PushoverConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  await ctx.fetch(
    {
      method: 'POST',
      url: 'https://api.pushover.net/1/messages.json',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: pushoverForm(cfg, msg).toString(),
    },
    checkPushover,
  );
}

function checkPushover(res: HttpResponse): string | null {
  if (res.status === 200) return null;
  const body = jsonBody(res) as { errors?: unknown } | undefined;
  const errors = Array.isArray(body?.errors) ? body.errors.filter((e) => typeof e === 'string').join('; ') : '';
  return httpProblem(res, errors ? `pushover: ${errors}` : undefined);
}
