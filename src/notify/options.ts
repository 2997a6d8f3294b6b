/** @module Shoutrrr-style query options: case-insensitive keys with aliases, unknown keys rejected, Go-like value parsing. */
import { AppError } from '../errors.ts';

/**
 * A notification URL that cannot be used. The message is safe to show: it names the service and the
 * offending part, never a token, password or option value.
 */
export class NotificationUrlError extends AppError {
  readonly code = 'NOTIFY_URL_INVALID';
  override readonly status = 422;
  override readonly expose = true;
}

/**
 * Reads the query of a notification URL the way Shoutrrr does (pkg/format): keys match case-insensitively,
 * each option may have aliases, only the first value of a repeated key counts, and an unknown key is an error
 * (a typo like `?chat=` must fail validation instead of being silently ignored).
 */
export class UrlOptions {
  readonly #service: string;
  readonly #values = new Map<string, string>();

  /** @param aliases every accepted (lowercase) key → its canonical option name. */
  constructor(service: string, query: URLSearchParams, aliases: Record<string, string>) {
    this.#service = service;
    for (const [rawKey, value] of query) {
      const canonical = aliases[rawKey.toLowerCase()];
      if (canonical === undefined) {
        throw new NotificationUrlError(`${service}: unknown option "${safeKey(rawKey)}"`);
      }
      if (!this.#values.has(canonical)) this.#values.set(canonical, value);
    }
  }

  /** True when the URL set this option (even to an empty string). */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  str(name: string, def = ''): string {
    return this.#values.get(name) ?? def;
  }

  /** Shoutrrr's ParseBool: true|1|yes|y and false|0|no|n, case-insensitive. */
  bool(name: string, def: boolean): boolean {
    const v = this.#values.get(name);
    if (v === undefined || v === '') return def;
    const b = parseBool(v);
    if (b === undefined) throw new NotificationUrlError(`${this.#service}: option "${name}" must be yes or no`);
    return b;
  }

  /** Integers like Go's strconv base 0 (`0x1f`, `0o17`, `0b101`), plus `#hex`. */
  int(name: string, def: number): number {
    const v = this.#values.get(name);
    if (v === undefined || v === '') return def;
    const n = parseGoInt(v);
    if (n === undefined) throw new NotificationUrlError(`${this.#service}: option "${name}" must be an integer`);
    return n;
  }

  /** A comma-separated list; empty entries dropped. */
  list(name: string, sep = ','): string[] {
    const v = this.#values.get(name);
    if (!v) return [];
    return v
      .split(sep)
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  /** One of `choices` (matched case-insensitively); returns the canonical spelling. */
  choice<T extends string>(name: string, choices: readonly T[], def: T): T {
    const v = this.#values.get(name);
    if (v === undefined || v === '') return def;
    const hit = choices.find((c) => c.toLowerCase() === v.toLowerCase());
    if (!hit) throw new NotificationUrlError(`${this.#service}: option "${name}" must be one of ${choices.join(', ')}`);
    return hit;
  }
}

/** Shoutrrr's ParseBool. */
export function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'y'].includes(s)) return true;
  if (['false', '0', 'no', 'n'].includes(s)) return false;
  return undefined;
}

/** Go `strconv.ParseInt(s, 0, 64)` for the forms users write, plus Shoutrrr's `#hex`. */
function parseGoInt(v: string): number | undefined {
  let s = v.trim().replaceAll('_', '');
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  let n: number;
  if (/^#[0-9a-f]+$/i.test(s)) n = Number.parseInt(s.slice(1), 16);
  else if (/^0x[0-9a-f]+$/i.test(s)) n = Number.parseInt(s.slice(2), 16);
  else if (/^0o[0-7]+$/i.test(s)) n = Number.parseInt(s.slice(2), 8);
  else if (/^0b[01]+$/i.test(s)) n = Number.parseInt(s.slice(2), 2);
  else if (/^0[0-7]+$/.test(s)) n = Number.parseInt(s.slice(1), 8);
  else if (/^[0-9]+$/.test(s)) n = Number.parseInt(s, 10);
  else return undefined;
  return Number.isSafeInteger(n) ? sign * n : undefined;
}

/** Option keys are echoed in errors; keep them short and printable so a pasted secret cannot leak through. */
function safeKey(key: string): string {
  const printable = key.replace(/[^\w@$.-]/g, '?');
  return printable.length > 32 ? `${printable.slice(0, 29)}...` : printable;
}

/** Percent-decodes a URL component; a malformed escape is an error rather than a crash. */
export function decodePart(service: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new NotificationUrlError(`${service}: ${what} is not valid percent-encoding`);
  }
}
