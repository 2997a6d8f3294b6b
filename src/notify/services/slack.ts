/**
 * @module Slack (Shoutrrr `slack://hook:T-B-X@webhook`, `slack://xoxb:TOKEN@CHANNEL`, legacy `slack://T/B/X`):
 * webhook or chat.postMessage, one attachment per line.
 */
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import { httpProblem, jsonBody, type HttpResponse, type NotificationMessage, type SendContext } from '../transport.ts';
import { MASKED, aliases, pickTitle } from './common.ts';

export interface SlackConfig {
  service: 'slack';
  /** `hook` posts to a webhook; `xoxb`/`xoxp` use the bot API. */
  kind: 'hook' | 'xoxb' | 'xoxp';
  /** The three token parts (T…, B…, X… for webhooks). */
  parts: [string, string, string];
  channel: string;
  botName: string;
  icon: string;
  color: string;
  title?: string;
  threadTs: string;
  secrets: string[];
}

const OPTIONS = aliases({
  botname: ['username'],
  icon: ['icon_emoji', 'icon_url'],
  color: [],
  title: [],
  thread_ts: [],
});
const TOKEN = /^(?:(xox.|hook)[-:]|:?)([A-Z0-9]{9,})([-/,])([A-Z0-9]{9,})([-/,])([A-Za-z0-9]{24,})$/;
/** Shoutrrr caps attachments; later lines are appended to the last one. */
const MAX_ATTACHMENTS = 100;

export function parseSlack(u: URL): SlackConfig {
  const host = decodePart('slack', u.hostname, 'host');
  const path = u.pathname.replace(/\/+$/, '');
  let raw: string;
  let channel: string;
  let botName = '';
  if (path.split('/').filter(Boolean).length > 1) {
    // Legacy form: the whole webhook token is host + path, the userinfo is the bot name.
    raw = decodePart('slack', host + path, 'token');
    channel = 'webhook';
    botName = decodePart('slack', u.username, 'bot name');
  } else {
    const user = decodePart('slack', u.username, 'token');
    const pass = decodePart('slack', u.password, 'token');
    if (!user && !pass)
      throw new NotificationUrlError(
        'slack: missing token (slack://hook:T…-B…-X…@webhook or slack://xoxb:TOKEN@CHANNEL)',
      );
    raw = `${user}:${pass}`;
    channel = host;
  }
  const m = TOKEN.exec(raw);
  if (!m || m[3] !== m[5])
    throw new NotificationUrlError('slack: the token is not a webhook token (T…-B…-X…) or a bot token (xoxb-…/xoxp-…)');
  const prefix = m[1] ?? 'hook';
  if (prefix !== 'hook' && prefix !== 'xoxb' && prefix !== 'xoxp') {
    throw new NotificationUrlError('slack: only webhook (hook), xoxb and xoxp tokens are supported');
  }
  if (prefix !== 'hook' && !channel)
    throw new NotificationUrlError('slack: missing channel (slack://xoxb:TOKEN@CHANNEL)');
  const o = new UrlOptions('slack', u.searchParams, OPTIONS);
  const parts: [string, string, string] = [m[2] as string, m[4] as string, m[6] as string];
  return {
    service: 'slack',
    kind: prefix,
    parts,
    channel,
    botName: o.str('botname', botName),
    icon: o.str('icon'),
    color: o.str('color'),
    ...(o.has('title') ? { title: o.str('title') } : {}),
    threadTs: o.str('thread_ts'),
    secrets: [parts.join('-'), parts.join('/'), parts[2]],
  };
}

export function maskSlack(u: URL): void {
  if (u.password) u.password = MASKED;
  else if (u.pathname.split('/').filter(Boolean).length > 1) u.pathname = `/${MASKED}`;
}

/** Shoutrrr's CreateJSONPayload. */
function slackPayload(cfg: SlackConfig, msg: NotificationMessage): Record<string, unknown> {
  const lines = msg.body.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const attachments: { text: string; color?: string }[] = [];
  for (const line of lines) {
    const last = attachments[attachments.length - 1];
    if (attachments.length >= MAX_ATTACHMENTS && last) last.text += `\n${line}`;
    else attachments.push({ text: line, ...(cfg.color ? { color: cfg.color } : {}) });
  }
  const icon = cfg.icon ? (/^https?:\/\//.test(cfg.icon) ? { icon_url: cfg.icon } : { icon_emoji: cfg.icon }) : {};
  return {
    text: pickTitle(cfg.title, msg.title),
    ...(cfg.botName ? { username: cfg.botName } : {}),
    attachments,
    ...(cfg.threadTs ? { thread_ts: cfg.threadTs } : {}),
    ...(cfg.kind !== 'hook' ? { channel: cfg.channel } : {}),
    ...icon,
  };
}

export async function sendSlack(cfg: SlackConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const body = JSON.stringify(slackPayload(cfg, msg));
  if (cfg.kind === 'hook') {
    const url = `https://hooks.slack.com/services/${cfg.parts.join('/')}`;
    await ctx.fetch({ method: 'POST', url, headers: { 'Content-Type': 'application/json' }, body }, checkWebhook);
    return;
  }
  await ctx.fetch(
    {
      method: 'POST',
      url: 'https://slack.com/api/chat.postMessage',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${cfg.kind}-${cfg.parts.join('-')}` },
      body,
    },
    checkApi,
  );
}

function checkWebhook(res: HttpResponse): string | null {
  const text = res.text.trim();
  if (text === 'ok' || (text === '' && res.status === 200)) return null;
  return httpProblem(res, text ? `slack: ${text}` : undefined);
}

function checkApi(res: HttpResponse): string | null {
  const body = jsonBody(res) as { ok?: unknown; error?: unknown } | undefined;
  if (body?.ok === true) return null;
  return httpProblem(res, typeof body?.error === 'string' ? `slack: ${body.error}` : undefined);
}
