/** @module Discord webhooks (Shoutrrr `discord://TOKEN@WEBHOOK_ID[/raw]`): embeds, one per line, batched like Shoutrrr. */
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import { DeliveryError, httpProblem, type NotificationMessage, type SendContext } from '../transport.ts';
import { aliases, maskUserinfo, pickTitle } from './common.ts';

export interface DiscordConfig {
  service: 'discord';
  webhookId: string;
  token: string;
  title?: string;
  username: string;
  avatar: string;
  color: number;
  splitLines: boolean;
  json: boolean;
  secrets: string[];
}

const OPTIONS = aliases({
  title: [],
  username: [],
  avatar: ['avatarurl'],
  color: [],
  colorError: [],
  colorWarn: [],
  colorInfo: [],
  colorDebug: [],
  splitLines: [],
  json: [],
});
/** Discord limits (Shoutrrr's util limits for discord): per embed, per request. */
const EMBED_MAX = 2000;
const EMBEDS_PER_REQUEST = 10;
const CHARS_PER_REQUEST = 6000;

export function parseDiscord(u: URL): DiscordConfig {
  const webhookId = decodePart('discord', u.hostname, 'webhook id');
  const token = decodePart('discord', u.username, 'token');
  if (!webhookId) throw new NotificationUrlError('discord: missing webhook id (discord://TOKEN@WEBHOOK_ID)');
  if (!token) throw new NotificationUrlError('discord: missing webhook token (discord://TOKEN@WEBHOOK_ID)');
  const path = u.pathname.replace(/\/+$/, '');
  if (path !== '' && path !== '/raw') throw new NotificationUrlError('discord: the only allowed path is /raw');
  const o = new UrlOptions('discord', u.searchParams, OPTIONS);
  for (const c of ['colorError', 'colorWarn', 'colorInfo', 'colorDebug']) o.int(c, 0);
  return {
    service: 'discord',
    webhookId,
    token,
    ...(o.has('title') ? { title: o.str('title') } : {}),
    username: o.str('username'),
    avatar: o.str('avatar'),
    color: o.int('color', 0x50d9ff),
    splitLines: o.bool('splitLines', true),
    json: path === '/raw' || o.bool('json', false),
    secrets: [token],
  };
}

export function maskDiscord(u: URL): void {
  maskUserinfo(u, { user: true, pass: true });
}

interface Embed {
  title?: string;
  description: string;
  color: number;
}

/** Splits the text into embeds and the embeds into requests, within Discord's limits. */
export function discordBatches(text: string, title: string, splitLines: boolean): Embed[][] {
  const pieces = splitLines
    ? text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => cut(l, EMBED_MAX))
    : partition(text, EMBED_MAX);
  const batches: string[][] = [];
  let current: string[] = [];
  let total = title.length;
  for (const p of pieces) {
    const len = [...p].length;
    if (current.length > 0 && (current.length >= EMBEDS_PER_REQUEST || total + len > CHARS_PER_REQUEST)) {
      batches.push(current);
      current = [];
      total = 0;
    }
    current.push(p);
    total += len;
  }
  if (current.length > 0) batches.push(current);
  return batches.map((b, i) =>
    b.map((description, j) =>
      i === 0 && j === 0 && title ? { title, description, color: 0 } : { description, color: 0 },
    ),
  );
}

export async function sendDiscord(cfg: DiscordConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const url = `https://discord.com/api/webhooks/${encodeURIComponent(cfg.webhookId)}/${encodeURIComponent(cfg.token)}`;
  const check = (res: { status: number; text: string }) => (res.status === 204 ? null : httpProblem(res));
  const headers = { 'Content-Type': 'application/json' };
  if (cfg.json) {
    await ctx.fetch({ method: 'POST', url, headers, body: msg.body }, check);
    return;
  }
  const batches = discordBatches(msg.body, pickTitle(cfg.title, msg.title), cfg.splitLines);
  if (batches.length === 0) throw new DeliveryError('discord: message is empty', { retryable: false });
  for (const embeds of batches) {
    const payload = {
      embeds: embeds.map((e) => ({ ...e, color: cfg.color })),
      ...(cfg.username ? { username: cfg.username } : {}),
      ...(cfg.avatar ? { avatar_url: cfg.avatar } : {}),
    };
    await ctx.fetch({ method: 'POST', url, headers, body: JSON.stringify(payload) }, check);
  }
}

function cut(line: string, max: number): string {
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join('')}…`;
}

/** Chunks of at most `max` characters, preferring to break at whitespace. */
function partition(text: string, max: number): string[] {
  const out: string[] = [];
  let rest = [...text.trim()];
  while (rest.length > 0) {
    if (rest.length <= max) {
      out.push(rest.join(''));
      break;
    }
    let at = rest.lastIndexOf(' ', max);
    const nl = rest.lastIndexOf('\n', max);
    at = Math.max(at, nl);
    if (at < max / 2) at = max;
    out.push(rest.slice(0, at).join('').trimEnd());
    rest = rest.slice(at);
    while (rest[0] === ' ' || rest[0] === '\n') rest = rest.slice(1);
  }
  return out.filter((s) => s !== '');
}
