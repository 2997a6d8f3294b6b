/** @module Sends one message to one Shoutrrr URL: parse, deliver with timeout and one retry, report without secrets. Never throws. */
import { maskValues } from '../lib/redact.ts';
import { sendDiscord } from './services/discord.ts';
import { sendGeneric } from './services/generic.ts';
import { sendGotify } from './services/gotify.ts';
import { sendMatrix } from './services/matrix.ts';
import { sendNtfy } from './services/ntfy.ts';
import { sendPushover } from './services/pushover.ts';
import { sendSlack } from './services/slack.ts';
import { sendSmtp } from './services/smtp.ts';
import { sendTeams } from './services/teams.ts';
import { sendTelegram } from './services/telegram.ts';
import { createSendContext, DeliveryError, type NotificationMessage, type SendContext } from './transport.ts';
import {
  maskNotificationUrl,
  parseShoutrrrUrl,
  secretsOfUrl,
  serviceOf,
  NotificationUrlError,
  type ServiceConfig,
  type ServiceName,
} from './url.ts';

/** Outcome of one send. `url` and `error` are masked; `attempts` is 0 when the URL was invalid. */
export interface NotifyResult {
  url: string;
  service: ServiceName | 'unknown';
  ok: boolean;
  error?: string;
  /** Last HTTP status (or SMTP reply code) when the failure came from the server. */
  status?: number;
  attempts: number;
}

/** Base URLs replacing the fixed API hosts per service (tests point discord, telegram… at 127.0.0.1). */
export type ServiceOverrides = Partial<Record<ServiceName, string>>;

export interface SendOptions {
  /** Per request timeout; default 10 s. */
  timeoutMs?: number;
  /** Retries after a transient failure; default 1 (two attempts). */
  retries?: number;
  /** Pause before the retry; default 1 s. */
  retryDelayMs?: number;
  overrides?: ServiceOverrides;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Sends `message` to `url`. Resolves with the outcome in every case. */
export async function sendNotification(
  url: string,
  message: NotificationMessage,
  opts: SendOptions = {},
): Promise<NotifyResult> {
  const masked = maskNotificationUrl(url);
  let cfg: ServiceConfig;
  try {
    cfg = parseShoutrrrUrl(url);
  } catch (err) {
    const reason = err instanceof NotificationUrlError ? err.message : 'cannot be parsed';
    return {
      url: masked,
      service: serviceOf(url) ?? 'unknown',
      ok: false,
      error: `invalid notification URL: ${reason}`,
      attempts: 0,
    };
  }
  const baseUrl = opts.overrides?.[cfg.service];
  const { ctx, attempts } = createSendContext({
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    retries: opts.retries ?? 1,
    retryDelayMs: opts.retryDelayMs ?? 1000,
    ...(baseUrl ? { baseUrl } : {}),
  });
  try {
    await deliver(cfg, message, ctx);
    return { url: masked, service: cfg.service, ok: true, attempts: attempts() };
  } catch (err) {
    const failure =
      err instanceof DeliveryError
        ? err
        : new DeliveryError(err instanceof Error ? err.message : String(err), { retryable: false });
    return {
      url: masked,
      service: cfg.service,
      ok: false,
      error: maskValues(failure.message, secretsOfUrl(cfg)),
      ...(failure.status !== undefined ? { status: failure.status } : {}),
      attempts: attempts(),
    };
  }
}

function deliver(cfg: ServiceConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  switch (cfg.service) {
    case 'discord':
      return sendDiscord(cfg, msg, ctx);
    case 'telegram':
      return sendTelegram(cfg, msg, ctx);
    case 'slack':
      return sendSlack(cfg, msg, ctx);
    case 'gotify':
      return sendGotify(cfg, msg, ctx);
    case 'ntfy':
      return sendNtfy(cfg, msg, ctx);
    case 'pushover':
      return sendPushover(cfg, msg, ctx);
    case 'matrix':
      return sendMatrix(cfg, msg, ctx);
    case 'teams':
      return sendTeams(cfg, msg, ctx);
    case 'smtp':
      return sendSmtp(cfg, msg, ctx);
    case 'generic':
      return sendGeneric(cfg, msg, ctx);
  }
}
