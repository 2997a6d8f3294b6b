/**
 * @module Webhook payloads and signatures (pure). Each provider's push event is reduced to clone URLs + branch, and
 * each provider's signature scheme is verified in constant time over the exact bytes that provider signs.
 *
 * Signatures (the secret is the repository's `webhook_secret`, else SHIPARR_WEBHOOK_SECRET); docs/webhooks.md has the
 * research behind each line:
 * - github:  `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`, for JSON and form bodies alike
 * - gitlab:  `X-Gitlab-Token: <secret>`
 * - gitea:   `X-Gitea-Signature: <hex HMAC-SHA256(secret, JSON payload)>` (also X-Forgejo-Signature / X-Gogs-Signature).
 *            The JSON payload is the raw body for `application/json`, and the percent-decoded `payload` field of the
 *            form for `application/x-www-form-urlencoded` (Gitea, Forgejo and Gogs sign the payload, not the form body).
 * - generic: `X-Shiparr-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, body `{"url"|"repository", "branch"|"ref"}`
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { normaliseRepoUrl } from '../lib/git-url.ts';
import { isJsonType } from './body.ts';
import { BadRequestError, UnsupportedMediaTypeError } from './errors.ts';

const PROVIDERS = ['github', 'gitlab', 'gitea', 'generic'] as const;
export type Provider = (typeof PROVIDERS)[number];

export function isProvider(p: string): p is Provider {
  return (PROVIDERS as readonly string[]).includes(p);
}

/** What a request is, before any matching. */
export type WebhookKind = 'push' | 'ping' | 'ignored';

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Classifies the delivery from the provider's event header (a missing header is treated as a push, e.g. curl). */
export function classifyEvent(provider: Provider, headers: Headers): { kind: WebhookKind; event: string | null } {
  if (provider === 'github') {
    const event = header(headers, 'x-github-event')?.toLowerCase() ?? null;
    if (event === 'ping') return { kind: 'ping', event };
    return { kind: event === null || event === 'push' ? 'push' : 'ignored', event };
  }
  if (provider === 'gitlab') {
    const event = header(headers, 'x-gitlab-event') ?? null;
    const e = event?.toLowerCase() ?? null;
    // GitLab's "Test" button sends a real push payload; system hooks carry pushes too.
    if (e === null || e === 'push hook' || e === 'system hook') return { kind: 'push', event };
    if (e === 'ping' || e === 'test') return { kind: 'ping', event };
    return { kind: 'ignored', event };
  }
  if (provider === 'gitea') {
    const event =
      (
        header(headers, 'x-gitea-event') ??
        header(headers, 'x-forgejo-event') ??
        header(headers, 'x-gogs-event')
      )?.toLowerCase() ?? null;
    if (event === 'ping' || event === 'test') return { kind: 'ping', event };
    return { kind: event === null || event === 'push' ? 'push' : 'ignored', event };
  }
  return { kind: 'push', event: null };
}

/** Delivery id headers by provider, first match wins (GitLab: one uuid per event, also given per webhook). */
const DELIVERY_HEADERS: Record<Provider, string[]> = {
  github: ['x-github-delivery'],
  gitlab: ['x-gitlab-event-uuid', 'x-gitlab-webhook-uuid'],
  gitea: ['x-gitea-delivery', 'x-forgejo-delivery', 'x-gogs-delivery'],
  generic: ['x-shiparr-delivery', 'x-request-id'],
};

/**
 * The provider's id of this delivery (GitHub X-GitHub-Delivery, Gitea/Forgejo/Gogs X-*-Delivery, GitLab
 * X-Gitlab-Event-UUID, generic X-Shiparr-Delivery or X-Request-Id), or null. Only ids of at most 100 characters of
 * letters, digits and `.:_-` are taken: the value is recorded with the deployment, so nothing else gets through.
 */
export function deliveryIdOf(provider: Provider, headers: Headers): string | null {
  for (const name of DELIVERY_HEADERS[provider]) {
    const v = header(headers, name)?.trim();
    if (v) return /^[A-Za-z0-9._:-]{1,100}$/.test(v) ? v : null;
  }
  return null;
}

/** Strips `refs/heads/`; tags and other refs yield null (they never match a branch). */
export function branchFromRef(ref: unknown): string | null {
  if (typeof ref !== 'string' || ref === '') return null;
  if (ref.startsWith('refs/heads/')) return ref.slice('refs/heads/'.length);
  if (ref.startsWith('refs/')) return null;
  return ref;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** A push reduced to what matching needs. */
export interface PushInfo {
  urls: string[];
  branch: string | null;
}

/** Extracts the clone URLs (normalised, deduplicated) and the branch of a push payload. */
export function extractPush(provider: Provider, payload: unknown): PushInfo {
  const body = obj(payload);
  const raw: (string | undefined)[] = [];
  let ref: unknown = body['ref'];
  if (provider === 'github' || provider === 'gitea') {
    const repo = obj(body['repository']);
    raw.push(
      str(repo['clone_url']),
      str(repo['html_url']),
      str(repo['ssh_url']),
      str(repo['git_url']),
      str(repo['url']),
    );
  } else if (provider === 'gitlab') {
    const project = obj(body['project']);
    const repo = obj(body['repository']);
    raw.push(
      str(project['git_http_url']),
      str(project['git_ssh_url']),
      str(project['web_url']),
      str(project['http_url']),
      str(project['ssh_url']),
      str(repo['git_http_url']),
      str(repo['git_ssh_url']),
      str(repo['homepage']),
      str(repo['url']),
    );
  } else {
    raw.push(str(body['url']), str(body['repository']));
    if (body['branch'] !== undefined) ref = body['branch'];
  }
  const urls = [
    ...new Set(
      raw
        .filter((u): u is string => u !== undefined)
        .map(normaliseRepoUrl)
        .filter((u): u is string => u !== null),
    ),
  ];
  return { urls, branch: branchFromRef(ref) };
}

/** A delivery's body reduced to the JSON payload it carries. */
export interface WebhookBody {
  /** The request body exactly as received. */
  raw: Buffer;
  /** `json`: the body is the payload; `form`: the payload is the `payload` field of an urlencoded form. */
  encoding: 'json' | 'form';
  /** The payload's exact bytes: the raw body, or the percent-decoded `payload` field (never re-serialised). */
  payload: Buffer;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

function isFormType(contentType: string | undefined): boolean {
  return (contentType?.split(';', 1)[0]?.trim().toLowerCase() ?? '') === FORM_TYPE;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Decodes one urlencoded form component to its exact bytes (`+` is a space); null for a malformed `%` escape. */
function formDecode(s: Buffer): Buffer | null {
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === 0x2b) out[n++] = 0x20;
    else if (c === 0x25) {
      const hi = i + 2 < s.length ? hexValue(s[i + 1]!) : -1;
      const lo = hi === -1 ? -1 : hexValue(s[i + 2]!);
      if (lo === -1) return null;
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else out[n++] = c;
  }
  return out.subarray(0, n);
}

/** The bytes of the single `payload` field of an urlencoded form body (400 when absent, repeated or malformed). */
function formPayload(raw: Buffer): Buffer {
  let found: Buffer | undefined;
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf(0x26, start); // '&'
    if (end === -1) end = raw.length;
    const pair = raw.subarray(start, end);
    start = end + 1;
    if (pair.length === 0) continue;
    const eq = pair.indexOf(0x3d); // '='
    const name = formDecode(eq === -1 ? pair : pair.subarray(0, eq));
    const value = formDecode(eq === -1 ? Buffer.alloc(0) : pair.subarray(eq + 1));
    if (name === null || value === null)
      throw new BadRequestError('form body is not valid urlencoding', 'INVALID_PAYLOAD');
    if (name.toString('latin1') !== 'payload') continue;
    if (found !== undefined)
      throw new BadRequestError('form body has more than one "payload" field', 'INVALID_PAYLOAD');
    found = value;
  }
  if (found === undefined) throw new BadRequestError('form body has no "payload" field', 'INVALID_PAYLOAD');
  return found;
}

/**
 * Reads the payload out of a delivery: the body itself for JSON content types, the `payload` field for
 * `application/x-www-form-urlencoded` (GitHub, Gitea, Forgejo and Gogs all offer it). Anything else → 415.
 */
export function decodeBody(contentType: string | undefined, raw: Buffer): WebhookBody {
  if (isJsonType(contentType)) return { raw, encoding: 'json', payload: raw };
  if (isFormType(contentType)) return { raw, encoding: 'form', payload: formPayload(raw) };
  throw new UnsupportedMediaTypeError(`application/json or ${FORM_TYPE}`);
}

/**
 * The exact bytes `provider` signs for this body. Gitea, Forgejo and Gogs compute their HMAC over the JSON payload
 * before choosing how to send it, so a form delivery is verified over the decoded `payload` field; GitHub signs the
 * body it sends (for a form, the whole urlencoded body), and so does the generic scheme. GitLab signs nothing.
 */
export function signedBytes(provider: Provider, body: WebhookBody): Buffer {
  return provider === 'gitea' && body.encoding === 'form' ? body.payload : body.raw;
}

function hmacHex(secret: string, raw: Buffer): string {
  return createHmac('sha256', secret).update(raw).digest('hex');
}

/**
 * Constant-time string equality. Both sides are hashed with a per-call key first, so neither the length nor the
 * position of the first difference leaks through timing.
 */
function safeEqual(a: string, b: string): boolean {
  const key = randomBytes(32);
  const ha = createHmac('sha256', key).update(a).digest();
  const hb = createHmac('sha256', key).update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * true when the request carries a valid signature for `secret` in the provider's scheme. `signed` is the exact bytes
 * the provider signs (see signedBytes(): the raw body, except for Gitea/Forgejo form deliveries).
 */
export function verifySignature(provider: Provider, headers: Headers, signed: Buffer, secret: string): boolean {
  if (secret === '') return false;
  if (provider === 'gitlab') {
    const token = header(headers, 'x-gitlab-token');
    return token !== undefined && safeEqual(token, secret);
  }
  let given: string | undefined;
  if (provider === 'github') given = header(headers, 'x-hub-signature-256');
  else if (provider === 'gitea') {
    given =
      header(headers, 'x-gitea-signature') ??
      header(headers, 'x-forgejo-signature') ??
      header(headers, 'x-gogs-signature');
  } else given = header(headers, 'x-shiparr-signature');
  if (given === undefined) return false;
  given = given.trim().toLowerCase();
  if (provider !== 'gitea') {
    if (!given.startsWith('sha256=')) return false;
    given = given.slice('sha256='.length);
  }
  return safeEqual(given, hmacHex(secret, signed));
}

/**
 * Signs bytes the way `provider` does; used by tests and by anyone scripting the generic hook. For a Gitea/Forgejo
 * form delivery, pass the JSON payload (what those forges sign), not the form body.
 */
export function signatureHeaders(provider: Provider, raw: Buffer | string, secret: string): Record<string, string> {
  const body = typeof raw === 'string' ? Buffer.from(raw) : raw;
  if (provider === 'gitlab') return { 'x-gitlab-token': secret };
  if (provider === 'github') return { 'x-hub-signature-256': `sha256=${hmacHex(secret, body)}` };
  if (provider === 'gitea') return { 'x-gitea-signature': hmacHex(secret, body) };
  return { 'x-shiparr-signature': `sha256=${hmacHex(secret, body)}` };
}
