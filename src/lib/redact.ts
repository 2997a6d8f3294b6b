/** @module Secret masking for strings that may leave the process (logs, API, DB, error messages). */

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+)(?::([^/\s@]*))?@/gi;
const AGE_SECRET = /AGE-SECRET-KEY-1[0-9A-Z]+/g;
const BEARER = /\b(Bearer|Basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const GITHUB_TOKEN = /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g;

/** The mask used everywhere a secret was removed. */
const MASK = '***';

/**
 * Masks credentials embedded in free text: `scheme://user:pass@host` → `scheme://***@host`,
 * age secret keys, bearer/basic tokens and GitHub tokens. Cheap enough for every log line.
 */
export function maskSecrets(text: string): string {
  if (!text) return text;
  return text
    .replace(URL_CREDENTIALS, (_m, scheme: string) => `${scheme}${MASK}@`)
    .replace(AGE_SECRET, `AGE-SECRET-KEY-1${MASK}`)
    .replace(BEARER, (_m, kind: string) => `${kind} ${MASK}`)
    .replace(GITHUB_TOKEN, MASK);
}

/** Removes exact secret values (e.g. configured tokens) from text, in addition to the patterns above. */
export function maskValues(text: string, secrets: Iterable<string | undefined>): string {
  let out = maskSecrets(text);
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join(MASK);
  }
  return out;
}
