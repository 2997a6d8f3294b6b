/** @module Telegram bots (Shoutrrr `telegram://BOT_TOKEN@telegram?chats=…`): one sendMessage call per chat. */
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import {
  DeliveryError,
  httpProblem,
  jsonBody,
  type HttpResponse,
  type NotificationMessage,
  type SendContext,
} from '../transport.ts';
import { aliases, escapeHtml, maskUserinfo } from './common.ts';

type TelegramParseMode = 'None' | 'Markdown' | 'HTML' | 'MarkdownV2';

interface TelegramChat {
  chatId: string;
  threadId?: number;
}

export interface TelegramConfig {
  service: 'telegram';
  token: string;
  chats: TelegramChat[];
  preview: boolean;
  notification: boolean;
  parseMode: TelegramParseMode;
  title?: string;
  secrets: string[];
}

const OPTIONS = aliases({ chats: ['channels'], preview: [], notification: [], parsemode: [], title: [] });
const TOKEN = /^[0-9]+:[a-zA-Z0-9_-]+$/;
/** Telegram rejects longer texts; Shoutrrr checks before sending. */
const MAX_BYTES = 4096;

export function parseTelegram(u: URL): TelegramConfig {
  const user = decodePart('telegram', u.username, 'token');
  const pass = decodePart('telegram', u.password, 'token');
  if (!user && !pass)
    throw new NotificationUrlError('telegram: missing bot token (telegram://BOT_TOKEN@telegram?chats=…)');
  const token = `${user}:${pass}`;
  if (!TOKEN.test(token))
    throw new NotificationUrlError('telegram: the bot token must look like 123456789:ABC-def_ghi');
  const o = new UrlOptions('telegram', u.searchParams, OPTIONS);
  const chats = o.list('chats').map(parseChat);
  if (chats.length === 0) throw new NotificationUrlError('telegram: missing chats (?chats=CHAT_ID[,@channel])');
  return {
    service: 'telegram',
    token,
    chats,
    preview: o.bool('preview', true),
    notification: o.bool('notification', true),
    parseMode: o.choice('parsemode', ['None', 'Markdown', 'HTML', 'MarkdownV2'] as const, 'None'),
    ...(o.has('title') ? { title: o.str('title') } : {}),
    secrets: [token, pass],
  };
}

function parseChat(entry: string): TelegramChat {
  const m = /^(.+):(\d+)$/.exec(entry);
  if (m && m[1] && m[2]) return { chatId: m[1], threadId: Number(m[2]) };
  return { chatId: entry };
}

export function maskTelegram(u: URL): void {
  maskUserinfo(u, { user: true, pass: true });
}

/** The sendMessage body for one chat, with Shoutrrr's title / parse-mode rules. */
function telegramPayload(cfg: TelegramConfig, msg: NotificationMessage, chat: TelegramChat): Record<string, unknown> {
  const title = cfg.title !== undefined && cfg.title !== '' ? cfg.title : msg.title;
  let text = msg.body;
  let parseMode: TelegramParseMode = cfg.parseMode;
  if (title && parseMode === 'None') {
    parseMode = 'HTML';
    text = `<b>${escapeHtml(title)}</b>\n${escapeHtml(msg.body)}`;
  } else if (title && parseMode === 'HTML') {
    text = `<b>${escapeHtml(title)}</b>\n${msg.body}`;
  }
  return {
    text,
    chat_id: chat.chatId,
    ...(chat.threadId !== undefined ? { message_thread_id: chat.threadId } : {}),
    ...(parseMode !== 'None' ? { parse_mode: parseMode } : {}),
    disable_web_page_preview: !cfg.preview,
    disable_notification: !cfg.notification,
    reply_to_message_id: 0,
  };
}

export async function sendTelegram(cfg: TelegramConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const url = `https://api.telegram.org/bot${cfg.token}/sendMessage`;
  for (const chat of cfg.chats) {
    const payload = telegramPayload(cfg, msg, chat);
    if (Buffer.byteLength(String(payload.text), 'utf8') > MAX_BYTES) {
      throw new DeliveryError(`telegram: message is longer than ${MAX_BYTES} bytes`, { retryable: false });
    }
    await ctx.fetch(
      { method: 'POST', url, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) },
      checkTelegram,
    );
  }
}

function checkTelegram(res: HttpResponse): string | null {
  const body = jsonBody(res) as { ok?: unknown; description?: unknown } | undefined;
  if (body?.ok === true) return null;
  return typeof body?.description === 'string' ? httpProblem(res, `telegram: ${body.description}`) : httpProblem(res);
}
