/** @module Small helpers shared by the notification services. */

/** A title given in the URL (`?title=`) is the user's explicit choice and wins over the event's title. */
export function pickTitle(urlTitle: string | undefined, messageTitle: string): string {
  return urlTitle !== undefined && urlTitle !== '' ? urlTitle : messageTitle;
}

/** Go's html.EscapeString: the five characters that matter in HTML text and attributes. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c] as string,
  );
}

/** HTTP header values must be Latin-1; non-ASCII text goes as an RFC 2047 encoded word (ntfy, generic). */
export function headerValue(s: string): string {
  const oneLine = s.replace(/[\r\n]+/g, ' ');
  return /^[\x20-\x7e]*$/.test(oneLine) ? oneLine : `=?UTF-8?B?${Buffer.from(oneLine, 'utf8').toString('base64')}?=`;
}

export function basicAuth(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
}

/** Lowercase name → canonical option name, for UrlOptions. */
export function aliases(map: Record<string, string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [canonical, names] of Object.entries(map)) {
    out[canonical.toLowerCase()] = canonical;
    for (const n of names) out[n.toLowerCase()] = canonical;
  }
  return out;
}

/** Replaces `u`'s userinfo parts with the mask where present. */
export function maskUserinfo(u: URL, which: { user?: boolean; pass?: boolean }): void {
  if (which.user && u.username) u.username = MASKED;
  if (which.pass && u.password) u.password = MASKED;
}

export const MASKED = '***';
