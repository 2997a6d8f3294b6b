/**
 * @module E-mail over SMTP (Shoutrrr `smtp://[USER[:PASS]@]HOST[:PORT]/?from=…&to=…`; `email://` is accepted as an alias)
 * sent with nodemailer: one message per recipient, like Shoutrrr.
 */
import { hostname } from 'node:os';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import { DeliveryError, type NotificationMessage, type SendContext } from '../transport.ts';
import { aliases, escapeHtml, maskUserinfo, pickTitle } from './common.ts';

type SmtpAuth = 'None' | 'Plain' | 'CRAMMD5' | 'OAuth2';
type SmtpEncryption = 'None' | 'ExplicitTLS' | 'ImplicitTLS' | 'Auto';

export interface SmtpConfig {
  service: 'smtp';
  host: string;
  port: number;
  user: string;
  password: string;
  from: string;
  fromName: string;
  to: string[];
  subject?: string;
  auth: SmtpAuth;
  encryption: SmtpEncryption;
  startTls: boolean;
  useHtml: boolean;
  clientHost: string;
  secrets: string[];
}

const OPTIONS = aliases({
  from: ['fromaddress'],
  to: ['toaddresses'],
  fromname: [],
  subject: ['title'],
  auth: [],
  encryption: [],
  starttls: ['usestarttls'],
  usehtml: [],
  clienthost: [],
});
const ADDRESS = /^[^\s@]+@[^\s@]+$/;

export function parseSmtp(u: URL): SmtpConfig {
  if (!u.hostname) throw new NotificationUrlError('smtp: missing server host (smtp://HOST[:PORT]/?from=…&to=…)');
  const o = new UrlOptions('smtp', u.searchParams, OPTIONS);
  // `+` in a query decodes to a space; Shoutrrr turns spaces back into `+` (user+tag@example.com).
  const from = o.str('from').replaceAll(' ', '+');
  const to = o.list('to').map((a) => a.replaceAll(' ', '+'));
  if (!from) throw new NotificationUrlError('smtp: missing sender (?from=ADDRESS)');
  if (to.length === 0) throw new NotificationUrlError('smtp: missing recipients (?to=ADDRESS[,ADDRESS])');
  if (!ADDRESS.test(from) || !to.every((a) => ADDRESS.test(a)))
    throw new NotificationUrlError('smtp: from/to must be e-mail addresses');
  const user = decodePart('smtp', u.username, 'user');
  const password = decodePart('smtp', u.password, 'password');
  const port = u.port ? Number(u.port) : 25;
  return {
    service: 'smtp',
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    user,
    password,
    from,
    fromName: o.str('fromname'),
    to,
    ...(o.has('subject') ? { subject: o.str('subject') } : {}),
    auth: o.choice('auth', ['None', 'Plain', 'CRAMMD5', 'OAuth2'] as const, user ? 'Plain' : 'None'),
    encryption: o.choice('encryption', ['None', 'ExplicitTLS', 'ImplicitTLS', 'Auto'] as const, 'Auto'),
    startTls: o.bool('starttls', true),
    useHtml: o.bool('usehtml', false),
    clientHost: o.str('clienthost', 'localhost'),
    secrets: [password],
  };
}

export function maskSmtp(u: URL): void {
  maskUserinfo(u, { pass: true });
}

/** nodemailer transport options equivalent to the Shoutrrr settings. */
function smtpTransportOptions(cfg: SmtpConfig, timeoutMs: number): SMTPTransport.Options {
  const implicit = cfg.encryption === 'ImplicitTLS' || (cfg.encryption === 'Auto' && cfg.port === 465);
  const opts: SMTPTransport.Options = {
    host: cfg.host,
    port: cfg.port,
    secure: implicit,
    // STARTTLS: required for ExplicitTLS, opportunistic by default, never with starttls=no.
    requireTLS: !implicit && cfg.encryption === 'ExplicitTLS',
    ignoreTLS: !implicit && cfg.encryption !== 'ExplicitTLS' && !cfg.startTls,
    name: cfg.clientHost.toLowerCase() === 'auto' ? hostname() : cfg.clientHost,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
  };
  if (cfg.auth === 'Plain' || cfg.auth === 'CRAMMD5') {
    opts.auth = { type: 'login', user: cfg.user, pass: cfg.password };
    opts.authMethod = cfg.auth === 'Plain' ? 'PLAIN' : 'CRAM-MD5';
  } else if (cfg.auth === 'OAuth2') {
    opts.auth = { type: 'OAuth2', user: cfg.user, accessToken: cfg.password };
  }
  return opts;
}

export async function sendSmtp(cfg: SmtpConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const transport = nodemailer.createTransport(smtpTransportOptions(cfg, ctx.timeoutMs));
  const subject = pickTitle(cfg.subject, msg.title);
  try {
    for (const to of cfg.to) {
      await ctx.withRetry(async (signal) => {
        const mail = transport.sendMail({
          from: cfg.fromName ? { name: cfg.fromName, address: cfg.from } : cfg.from,
          to,
          subject,
          text: msg.body,
          ...(cfg.useHtml ? { html: `<p>${escapeHtml(msg.body).replaceAll('\n', '<br>\n')}</p>` } : {}),
        });
        await raceAbort(mail, signal);
      });
    }
  } finally {
    transport.close();
  }
}

/** nodemailer has its own socket timeouts; the abort race also bounds slow DNS or a stalled DATA phase. */
async function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new DeliveryError('smtp: timed out', { retryable: true }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([
      p.catch((err: unknown) => {
        throw toSmtpError(err);
      }),
      aborted,
    ]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    p.catch(() => undefined);
  }
}

/** SMTP 4xx replies and network errors are transient; 5xx replies and auth failures are not. */
function toSmtpError(err: unknown): DeliveryError {
  const e = err as { message?: string; code?: string; responseCode?: number };
  const code = e.responseCode;
  const retryable = code !== undefined ? code >= 400 && code < 500 : e.code !== 'EAUTH' && e.code !== 'EENVELOPE';
  const reason = `smtp: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`;
  return new DeliveryError(reason, { retryable, ...(code !== undefined ? { status: code } : {}), cause: err });
}
