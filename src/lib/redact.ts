/**
 * @module Secret masking for strings that may leave the process (logs, API, DB, error messages): patterns (URL
 * credentials, age keys, bearer and GitHub tokens) plus the exact values of a process-wide registry of known secrets
 * (the daemon's configured passwords, tokens and keys, the project files' repository tokens).
 */

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+)(?::([^/\s@]*))?@/gi;
const AGE_SECRET = /AGE-SECRET-KEY-1[0-9A-Z]+/g;
const BEARER = /\b(Bearer|Basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const GITHUB_TOKEN = /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g;

/** The mask used everywhere a secret was removed. */
const MASK = '***';

/** Shortest registered value that is masked: shorter ones would hide ordinary words. */
const MIN_REGISTERED_LENGTH = 4;

/** Known secret values by source (e.g. 'environment', 'projects'); a source's new list replaces its old one. */
const registry = new Map<string, string[]>();
/** Every registered value, longest first (a value containing another is masked as a whole). */
let registered: string[] = [];

/**
 * Registers the exact secret values of `source` (replacing what that source registered before) so that
 * {@link maskSecrets}, and with it the logger, the store, the API and notifications, masks them in this thread.
 * Values shorter than 4 characters are ignored. Worker threads have their own (empty) registry.
 */
export function registerSecretValues(source: string, values: Iterable<string | undefined>): void {
  const list = [...new Set([...values].filter((v): v is string => !!v && v.length >= MIN_REGISTERED_LENGTH))];
  if (list.length) registry.set(source, list);
  else registry.delete(source);
  registered = [...new Set([...registry.values()].flat())].sort((a, b) => b.length - a.length);
}

/** Names of the daemon's variables that hold secrets (SOPS_AGE_KEY, SHIPARR_AUTH_PASSWORD, *_TOKEN(S)…), not paths. */
const SECRET_ENV_NAME = /(PASSWORD|SECRET|TOKENS?|_KEY)$/;

/** Shortest value of a secret-named variable that is registered. */
const MIN_ENV_VALUE_LENGTH = 6;
/** Parts of a list-like secret shorter than this are not registered on their own (words of a comment, names). */
const MIN_PART_LENGTH = 8;

/**
 * The secret values of an environment: every variable whose name ends in PASSWORD, SECRET, TOKEN(S) or _KEY
 * (so SOPS_AGE_KEY_FILE, a path, is not one) and whose value has at least 6 characters, whole and, for lists such as `name:token,name2:token2` or a
 * multi-line key file, each non-comment line and each part of at least 8 characters.
 */
export function secretEnvValues(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    // Short values of such names are flags or placeholders ("true", "none"), not secrets worth masking everywhere.
    if (!value || value.length < MIN_ENV_VALUE_LENGTH || !SECRET_ENV_NAME.test(name.toUpperCase())) continue;
    out.push(value);
    for (const raw of value.split(/\r?\n/)) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      out.push(line);
      for (const part of line.split(/[\s,;]+/)) {
        const sep = part.search(/[:=]/);
        for (const p of [part, sep > 0 ? part.slice(sep + 1) : '']) if (p.length >= MIN_PART_LENGTH) out.push(p);
      }
    }
  }
  return out;
}

/**
 * Masks credentials embedded in free text: `scheme://user:pass@host` → `scheme://***@host`,
 * age secret keys, bearer/basic tokens and GitHub tokens, and every value of the registry
 * ({@link registerSecretValues}). Cheap enough for every log line.
 */
export function maskSecrets(text: string): string {
  if (!text) return text;
  let out = text
    .replace(URL_CREDENTIALS, (_m, scheme: string) => `${scheme}${MASK}@`)
    .replace(AGE_SECRET, `AGE-SECRET-KEY-1${MASK}`)
    .replace(BEARER, (_m, kind: string) => `${kind} ${MASK}`)
    .replace(GITHUB_TOKEN, MASK);
  for (const v of registered) if (out.includes(v)) out = out.split(v).join(MASK);
  return out;
}

/**
 * A masker for exact values known to one task (e.g. a deploy's decrypted env values): values shorter than
 * `minLength` (default 6) are left alone so that `true`, `1` or `info` stay readable; longer ones are masked
 * longest first.
 */
export function valueMasker(values: Iterable<string>, minLength = 6): (text: string) => string {
  const list = [...new Set([...values].filter((v) => v.length >= minLength))].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const v of list) if (out.includes(v)) out = out.split(v).join(MASK);
    return out;
  };
}

/** Removes exact secret values (e.g. configured tokens) from text, in addition to the patterns above. */
export function maskValues(text: string, secrets: Iterable<string | undefined>): string {
  let out = maskSecrets(text);
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join(MASK);
  }
  return out;
}
