/**
 * @module Generic webhooks (Shoutrrr `generic://HOST/PATH?…` and `generic+https://HOST/PATH?…`): raw text or a JSON
 * object, `@Header=` query keys become headers, `$key=` extra JSON fields, other keys stay in the target URL.
 */
import { NotificationUrlError, decodePart, parseBool } from '../options.ts';
import { type HttpResponse, type NotificationMessage, type SendContext, httpProblem } from '../transport.ts';
import { MASKED, basicAuth, headerValue, pickTitle } from './common.ts';

export interface GenericConfig {
  service: 'generic';
  /** Target URL (http/https) with the forwarded query, without credentials. */
  target: string;
  method: string;
  /** Explicit `contenttype`, else chosen from the template. */
  contentType?: string;
  template: '' | 'json';
  title?: string;
  titleKey: string;
  messageKey: string;
  headers: Record<string, string>;
  extras: Record<string, string>;
  /** Userinfo of the URL, sent as Basic auth (fetch refuses URLs with credentials). */
  basic?: { user: string; pass: string };
  secrets: string[];
}

/** Options of the generic service itself; anything else is forwarded to the target. */
const RESERVED = ['contenttype', 'disabletls', 'template', 'title', 'titlekey', 'messagekey', 'method'];
/** Forwarded query keys whose values are masked in logs. */
const SECRET_KEY = /token|key|secret|sig|signature|pass|auth|code|hash|session|credential/i;

export function parseGeneric(u: URL, custom: boolean): GenericConfig {
  if (!u.host)
    throw new NotificationUrlError('generic: missing host (generic://HOST/PATH or generic+https://HOST/PATH)');
  const props = new Map<string, string>();
  const headers: Record<string, string> = {};
  const extras: Record<string, string> = {};
  const forwarded = new URLSearchParams();
  for (const [key, value] of u.searchParams) {
    if (key.startsWith('@') && key.length > 1) headers[normalizedHeaderKey(key.slice(1))] = value;
    else if (key.startsWith('$') && key.length > 1) extras[key.slice(1)] = value;
    else if (!custom && RESERVED.includes(key.toLowerCase())) {
      if (!props.has(key.toLowerCase())) props.set(key.toLowerCase(), value);
    } else if (!custom && key.startsWith('__') && RESERVED.includes(key.slice(2).toLowerCase()))
      forwarded.append(key.slice(2), value);
    else forwarded.append(key, value);
  }
  const scheme = custom ? u.protocol.slice('generic+'.length, -1) : undefined;
  if (custom && scheme !== 'https' && scheme !== 'http')
    throw new NotificationUrlError('generic: use generic+https:// or generic+http://');
  let disableTls = scheme === 'http';
  const dt = props.get('disabletls');
  if (dt !== undefined && dt !== '') {
    const b = parseBool(dt);
    if (b === undefined) throw new NotificationUrlError('generic: option "disabletls" must be yes or no');
    disableTls = b;
  }
  const template = (props.get('template') ?? '').toLowerCase();
  if (template !== '' && template !== 'json') {
    throw new NotificationUrlError('generic: only template=json is supported (named templates are not)');
  }
  const method = (props.get('method') || 'POST').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new NotificationUrlError('generic: option "method" must be an HTTP method');
  const query = forwarded.toString();
  const target = `${disableTls ? 'http' : 'https'}://${u.host}${u.pathname || '/'}${query ? `?${query}` : ''}`;
  const user = decodePart('generic', u.username, 'user');
  const pass = decodePart('generic', u.password, 'password');
  const contentType = props.get('contenttype');
  return {
    service: 'generic',
    target,
    method,
    ...(contentType ? { contentType } : {}),
    template: template as '' | 'json',
    ...(props.has('title') ? { title: props.get('title') } : {}),
    titleKey: props.get('titlekey') || 'title',
    messageKey: props.get('messagekey') || 'message',
    headers,
    extras,
    ...(user || pass ? { basic: { user, pass } } : {}),
    secrets: [
      pass,
      ...Object.values(headers),
      ...[...forwarded].filter(([k]) => SECRET_KEY.test(k)).map(([, v]) => v),
      ...u.pathname
        .split('/')
        .filter(looksLikeSecret)
        .map((s) => decodePart('generic', s, 'path')),
      // The whole path and query as written: a delivery error echoing the target URL must not show them.
      ...(u.pathname.length > 1 ? [u.pathname] : []),
      ...(query ? [query] : []),
      ...(u.search.length > 1 ? [u.search.slice(1)] : []),
    ].filter((s) => s.length >= 4),
  };
}

/**
 * Masks credentials and the whole path and query: a webhook's path (Home Assistant's `/api/webhook/<id>`, n8n, Node-RED…)
 * and its query (signatures, keys) are its secret, and cannot be told apart from harmless parts. Only scheme and host
 * stay, e.g. `generic+https://hooks.example/***?***`.
 */
export function maskGeneric(u: URL): void {
  if (u.password) u.password = MASKED;
  else if (u.username) u.username = MASKED;
  if (u.pathname !== '' && u.pathname !== '/') u.pathname = `/${MASKED}`;
  if (u.search) u.search = MASKED;
}

function looksLikeSecret(segment: string): boolean {
  return segment.length >= 16 && /[0-9]/.test(segment) && /[A-Za-z]/.test(segment);
}

/** Shoutrrr's normalizedHeaderKey: `acceptLanguage` → `Accept-Language`, `x-api-key` → `X-Api-Key`. */
function normalizedHeaderKey(key: string): string {
  let out = '';
  let upper = true;
  for (const ch of key) {
    if (ch >= 'A' && ch <= 'Z' && out !== '' && !upper) out += '-';
    if (ch === '-') {
      out += ch;
      upper = true;
      continue;
    }
    out += upper ? ch.toUpperCase() : ch;
    upper = false;
  }
  return out;
}

/** The request body: title line + message as text, or a JSON object with sorted keys like Go's json.Marshal of a map. */
function genericBody(cfg: GenericConfig, msg: NotificationMessage): string {
  const title = pickTitle(cfg.title, msg.title);
  // Raw text has no title field: the title becomes the first line so the outcome is not lost (Shoutrrr drops it).
  if (cfg.template === '') return title ? `${title}\n${msg.body}` : msg.body;
  const fields: Record<string, string> = { ...cfg.extras, [cfg.messageKey]: msg.body };
  if (title) fields[cfg.titleKey] = title;
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(fields).sort()) sorted[k] = fields[k] as string;
  return JSON.stringify(sorted);
}

export async function sendGeneric(cfg: GenericConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  // Shoutrrr v0.8 labels raw text as JSON; the maintained fork sends text/plain, which receivers can actually parse.
  const contentType = cfg.contentType ?? (cfg.template === 'json' ? 'application/json' : 'text/plain');
  const headers: Record<string, string> = { 'Content-Type': contentType, Accept: contentType };
  if (cfg.basic) headers.Authorization = basicAuth(cfg.basic.user, cfg.basic.pass);
  for (const [k, v] of Object.entries(cfg.headers)) headers[k] = headerValue(v);
  const hasBody = cfg.method !== 'GET' && cfg.method !== 'HEAD';
  await ctx.fetch(
    { method: cfg.method, url: cfg.target, headers, ...(hasBody ? { body: genericBody(cfg, msg) } : {}) },
    (res: HttpResponse) => (res.status >= 200 && res.status < 300 ? null : httpProblem(res)),
  );
}
