/**
 * @module The sops value layer: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` parsing, AES-256-GCM with the
 * path AAD, typed decoding, and Go's formatting of unencrypted values (`ToBytes`) so the MAC matches sops'.
 */
import crypto from 'node:crypto';
import { SopsError } from './errors.ts';

/** The `type:` of an encrypted value. */
type SopsValueType = 'str' | 'int' | 'float' | 'bool' | 'bytes' | 'time' | 'comment';

/** A decoded plaintext value: strings, numbers (bigint beyond 2^53), booleans, raw bytes. */
type SopsScalar = string | number | bigint | boolean | Buffer;

/** One decrypted value: the raw plaintext bytes (what the MAC hashes) and the typed value. */
export interface DecryptedValue {
  type: SopsValueType;
  raw: Buffer;
  value: SopsScalar;
}

// Same regex as aes/cipher.go: anchored at the start only, greedy groups.
const ENC_RE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;
const STD_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const TYPES = new Set<string>(['str', 'int', 'float', 'bool', 'bytes', 'time', 'comment']);

/** true when `text` has the sops encrypted-value shape (without checking its parts). */
export function looksEncrypted(text: string): boolean {
  return text.startsWith('ENC[AES256_GCM,');
}

function b64(text: string, what: string, where: string): Buffer {
  if (!STD_B64.test(text))
    throw new SopsError('SOPS_MALFORMED', `invalid base64 ${what} in encrypted value at ${where}`);
  return Buffer.from(text, 'base64');
}

/**
 * Decrypts one `ENC[…]` value. `aad` is `join(path, ":") + ":"` (or the RFC3339 `lastmodified` for the MAC).
 * @param where human location for messages (a key path, never the value).
 * @throws SopsError SOPS_MALFORMED (not an ENC value, bad base64, unknown type) or SOPS_DECRYPT_FAILED (auth failure).
 */
export function decryptValue(enc: string, dataKey: Buffer, aad: string, where: string): DecryptedValue {
  const m = ENC_RE.exec(enc);
  if (!m) throw new SopsError('SOPS_MALFORMED', `value at ${where} is not a valid sops ENC[AES256_GCM,…] value`);
  const [, dataB64 = '', ivB64 = '', tagB64 = '', type = ''] = m;
  if (!TYPES.has(type)) throw new SopsError('SOPS_MALFORMED', `unknown value type "${type.slice(0, 16)}" at ${where}`);
  const data = b64(dataB64, 'data', where);
  const iv = b64(ivB64, 'iv', where);
  const tag = b64(tagB64, 'tag', where);
  if (iv.length === 0 || tag.length !== 16) throw new SopsError('SOPS_MALFORMED', `bad iv or tag length at ${where}`);
  let raw: Buffer;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', dataKey, iv, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    raw = Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    throw new SopsError('SOPS_DECRYPT_FAILED', `cannot decrypt value at ${where} (wrong data key or tampered value)`);
  }
  return { type: type as SopsValueType, raw, value: decodeTyped(type as SopsValueType, raw, where) };
}

const BOOL_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const BOOL_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function decodeTyped(type: SopsValueType, raw: Buffer, where: string): SopsScalar {
  const bad = (): SopsError => new SopsError('SOPS_MALFORMED', `decrypted value at ${where} is not a valid ${type}`);
  switch (type) {
    case 'str':
    case 'comment':
    case 'time':
      return raw.toString('utf8');
    case 'bytes':
      return raw;
    case 'int': {
      const text = raw.toString('latin1');
      if (!/^[+-]?\d+$/.test(text)) throw bad();
      const n = BigInt(text);
      if (n < INT64_MIN || n > INT64_MAX) throw bad();
      return Number.isSafeInteger(Number(n)) ? Number(n) : n;
    }
    case 'float': {
      const text = raw.toString('latin1');
      const special = /^([+-]?)(inf|infinity)$/i.exec(text);
      if (special) return special[1] === '-' ? -Infinity : Infinity;
      if (/^[+-]?nan$/i.test(text)) return NaN;
      const n = Number(text.replaceAll('_', ''));
      if (text.trim() === '' || Number.isNaN(n)) throw bad();
      return n;
    }
    case 'bool': {
      const text = raw.toString('latin1');
      if (BOOL_TRUE.has(text)) return true;
      if (BOOL_FALSE.has(text)) return false;
      throw bad();
    }
  }
}

/** Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent. */
export function formatGoFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const e = s.indexOf('e');
  if (e < 0) return s;
  const neg = s.startsWith('-');
  const mantissa = s.slice(neg ? 1 : 0, e);
  const exp = Number(s.slice(e + 1));
  const [intPart = '', frac = ''] = mantissa.split('.');
  const digits = intPart + frac;
  const point = intPart.length + exp;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return neg ? `-${out}` : out;
}

/** Go's decimal formatting of an integer that was an `int` (int64) in sops; larger values were float64. */
export function formatGoInt(v: bigint): string {
  return v >= INT64_MIN && v <= INT64_MAX ? v.toString() : formatGoFloat(Number(v));
}

/** `ToBytes` for a plain boolean (Python-compatible Titlecase, as sops writes). */
export function formatGoBool(v: boolean): string {
  return v ? 'True' : 'False';
}

const YAML_TS =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:([Tt])|( ))(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * go-yaml v3 resolves unquoted timestamps to time.Time and sops ≥ 3.10 hashes them as `MarshalText`
 * (RFC3339Nano). Returns that text, or undefined when `text` is not a go-yaml timestamp.
 */
export function goYamlTimestamp(text: string): string | undefined {
  const m = YAML_TS.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, tSep, space, h, mi, s, frac, zone] = m;
  // Layouts: date only; "T"/"t" with an optional zone; a single space with no zone.
  if (space !== undefined && zone !== undefined) return undefined;
  const pad = (x: string | undefined): string => (x ?? '0').padStart(2, '0');
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(Number(y), month, 0)).getUTCDate())
    return undefined;
  if (tSep === undefined && space === undefined) return `${y}-${pad(mo)}-${pad(d)}T00:00:00Z`;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const fraction = (frac ?? '').slice(0, 9).replace(/0+$/, '');
  const offset = zone === undefined || zone === 'Z' || /^[+-]00:00$/.test(zone) ? 'Z' : zone;
  return `${y}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${fraction ? `.${fraction}` : ''}${offset}`;
}

/**
 * Re-formats sops' `lastmodified` like Go's `time.Parse(RFC3339)` + `Format(RFC3339)`: seconds precision,
 * `Z` for a zero offset. Used as the AAD of the MAC.
 * @throws SopsError SOPS_MALFORMED when it is not RFC3339.
 */
export function normalizeLastModified(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) throw new SopsError('SOPS_MALFORMED', 'sops metadata "lastmodified" is not an RFC3339 time');
  const [, date, time, zone = 'Z'] = m;
  return `${date}T${time}${/^[+-]00:00$/.test(zone) ? 'Z' : zone}`;
}
