/**
 * @module Shoutrrr notification URLs: parsing into per-service configs, validation for the config schema, and masking
 * for logs, the API and the database. Nothing here performs I/O.
 */
import { maskSecrets } from '../lib/redact.ts';
import { NotificationUrlError } from './options.ts';
import { MASKED } from './services/common.ts';
import { maskDiscord, parseDiscord, type DiscordConfig } from './services/discord.ts';
import { maskGeneric, parseGeneric, type GenericConfig } from './services/generic.ts';
import { maskGotify, parseGotify, type GotifyConfig } from './services/gotify.ts';
import { maskMatrix, parseMatrix, type MatrixConfig } from './services/matrix.ts';
import { maskNtfy, parseNtfy, type NtfyConfig } from './services/ntfy.ts';
import { maskPushover, parsePushover, type PushoverConfig } from './services/pushover.ts';
import { maskSlack, parseSlack, type SlackConfig } from './services/slack.ts';
import { maskSmtp, parseSmtp, type SmtpConfig } from './services/smtp.ts';
import { maskTeams, parseTeams, type TeamsConfig } from './services/teams.ts';
import { maskTelegram, parseTelegram, type TelegramConfig } from './services/telegram.ts';

export { NotificationUrlError };

/** The services Shiparr sends to natively. */
const SERVICES = [
  'discord',
  'telegram',
  'slack',
  'gotify',
  'ntfy',
  'pushover',
  'matrix',
  'teams',
  'smtp',
  'generic',
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** A parsed notification URL. `secrets` holds the values that must never appear in logs or errors. */
export type ServiceConfig =
  | DiscordConfig
  | TelegramConfig
  | SlackConfig
  | GotifyConfig
  | NtfyConfig
  | PushoverConfig
  | MatrixConfig
  | TeamsConfig
  | SmtpConfig
  | GenericConfig;

/** Schemes beyond the service names: `generic+https`/`generic+http` (custom webhook form) and `email` (an smtp alias). */
const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** The service a URL routes to (Shoutrrr: the scheme, or the part before `+`), or undefined when unknown. */
export function serviceOf(url: string): ServiceName | undefined {
  const m = SCHEME.exec(url.trim());
  if (!m?.[1]) return undefined;
  const base = m[1].toLowerCase().split('+')[0] as string;
  if (base === 'email') return 'smtp';
  return (SERVICES as readonly string[]).includes(base) ? (base as ServiceName) : undefined;
}

/**
 * Parses a Shoutrrr URL into the config of its service.
 * @throws NotificationUrlError with a reason that names the problem but never a token (unknown scheme, missing token…).
 */
export function parseShoutrrrUrl(url: string): ServiceConfig {
  const raw = url.trim();
  const m = SCHEME.exec(raw);
  if (!m?.[1]) throw new NotificationUrlError('is not a URL (expected service://…)');
  const scheme = m[1].toLowerCase();
  const service = serviceOf(raw);
  if (!service) {
    throw new NotificationUrlError(
      `has an unknown service "${printableScheme(scheme)}" (supported: ${SERVICES.join(', ')})`,
    );
  }
  if (scheme.includes('+') && service !== 'generic') {
    throw new NotificationUrlError(`${service}: the custom "+" URL form is only supported for generic+https://`);
  }
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new NotificationUrlError(
      `${service}: the URL cannot be parsed (missing host? special characters in tokens must be percent-encoded)`,
    );
  }
  if (u.hash)
    throw new NotificationUrlError(`${service}: unexpected "#" (write it as %23, e.g. in Matrix room aliases)`);
  switch (service) {
    case 'discord':
      return parseDiscord(u);
    case 'telegram':
      return parseTelegram(u);
    case 'slack':
      return parseSlack(u);
    case 'gotify':
      return parseGotify(u);
    case 'ntfy':
      return parseNtfy(u);
    case 'pushover':
      return parsePushover(u);
    case 'matrix':
      return parseMatrix(u);
    case 'teams':
      return parseTeams(u);
    case 'smtp':
      return parseSmtp(u);
    case 'generic':
      return parseGeneric(u, scheme !== 'generic');
  }
}

/** Config-schema check: null when the URL is usable, else a short reason that never contains the token. */
export function validateNotificationUrl(url: string): string | null {
  try {
    parseShoutrrrUrl(url);
    return null;
  } catch (err) {
    return err instanceof NotificationUrlError ? err.message : 'cannot be parsed';
  }
}

/**
 * The URL with tokens, passwords and other secrets replaced by `***`: safe for logs, the API and the database.
 * Unparseable input is masked as a whole after the scheme, since its secret parts cannot be told apart.
 */
export function maskNotificationUrl(url: string): string {
  const raw = url.trim();
  const m = SCHEME.exec(raw);
  const service = serviceOf(raw);
  if (!m?.[1] || !service) return m?.[1] ? `${printableScheme(m[1])}://${MASKED}` : MASKED;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `${printableScheme(m[1])}://${MASKED}`;
  }
  u.hash = '';
  switch (service) {
    case 'discord':
      maskDiscord(u);
      break;
    case 'telegram':
      maskTelegram(u);
      break;
    case 'slack':
      maskSlack(u);
      break;
    case 'gotify':
      maskGotify(u);
      break;
    case 'ntfy':
      maskNtfy(u);
      break;
    case 'pushover':
      maskPushover(u);
      break;
    case 'matrix':
      maskMatrix(u);
      break;
    case 'teams':
      maskTeams(u);
      break;
    case 'smtp':
      maskSmtp(u);
      break;
    case 'generic':
      maskGeneric(u);
      break;
  }
  // Belt and braces: any userinfo left (e.g. an unexpected form) goes through the generic masker too.
  return maskSecrets(u.href.replaceAll('%2A%2A%2A', MASKED));
}

/** Every secret of a URL (decoded and as written), to scrub error texts that might echo them. */
export function secretsOfUrl(cfg: ServiceConfig): string[] {
  const out = new Set<string>();
  for (const s of cfg.secrets) {
    if (!s || s.length < 4) continue;
    out.add(s);
    out.add(encodeURIComponent(s));
  }
  return [...out];
}

function printableScheme(scheme: string): string {
  const s = scheme.toLowerCase().replace(/[^a-z0-9+.-]/g, '');
  return s.length > 24 ? `${s.slice(0, 21)}...` : s;
}
