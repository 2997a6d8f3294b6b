/**
 * @module age v1 (age-encryption.org/v1) decryption for X25519 identities, built on node:crypto only:
 * armor → header (stanzas, HMAC) → X25519 unwrap of the file key → STREAM payload (ChaCha20-Poly1305, 64 KiB chunks).
 * Other stanza types (post-quantum `mlkem768x25519`, scrypt, plugins) are recognised and skipped.
 */
import crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { bech32Decode, bech32Encode } from './bech32.ts';
import { SopsError } from './errors.ts';

const INTRO = 'age-encryption.org/v1';
const X25519_LABEL = 'age-encryption.org/v1/X25519';
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const ARMOR_END = '-----END AGE ENCRYPTED FILE-----';

/** Builds a private X25519 KeyObject from 32 raw bytes (Node has no raw import for X25519, hence PKCS#8). */
function x25519PrivateKey(raw: Uint8Array): KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

/** Builds a public X25519 KeyObject from 32 raw bytes. */
function x25519PublicKey(raw: Uint8Array): KeyObject {
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw 32 bytes of an X25519 public KeyObject. */
function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519_PREFIX.length);
}

/**
 * One X25519 age identity. The secret stays in a private field: the object prints (and JSON-serialises) as its
 * public recipient only, so an identity logged by mistake does not leak.
 */
export class AgeIdentity {
  /** The matching recipient, `age1…`. */
  readonly recipient: string;
  /** Where the identity came from (a key file path or `SOPS_AGE_KEY`), for error messages. */
  readonly source: string;
  readonly #secret: KeyObject;
  readonly #publicRaw: Buffer;

  constructor(secret: KeyObject, source: string) {
    this.#secret = secret;
    this.#publicRaw = rawPublicKey(crypto.createPublicKey(secret));
    this.recipient = bech32Encode('age', this.#publicRaw);
    this.source = source;
  }

  /** Tries to unwrap an X25519 stanza; returns the 16-byte file key, or undefined when it is not for us. */
  unwrap(stanza: AgeStanza): Buffer | undefined {
    if (stanza.type !== 'X25519') return undefined;
    const shareB64 = stanza.args[0];
    if (stanza.args.length !== 1 || shareB64 === undefined) throw malformed('X25519 stanza needs exactly one argument');
    const share = decodeRawBase64(shareB64, 'X25519 share');
    if (share.length !== 32) throw malformed('X25519 share is not 32 bytes');
    if (stanza.body.length !== 32) throw malformed('X25519 stanza body is not 32 bytes');
    let shared: Buffer;
    try {
      shared = crypto.diffieHellman({ privateKey: this.#secret, publicKey: x25519PublicKey(share) });
    } catch {
      // Low-order points make OpenSSL refuse the exchange: such a stanza cannot be ours.
      return undefined;
    }
    if (shared.every((b) => b === 0)) return undefined;
    const salt = Buffer.concat([share, this.#publicRaw]);
    const wrapKey = Buffer.from(crypto.hkdfSync('sha256', shared, salt, X25519_LABEL, 32));
    return chachaOpen(wrapKey, Buffer.alloc(12), stanza.body);
  }

  toJSON(): { recipient: string; source: string } {
    return { recipient: this.recipient, source: this.source };
  }

  toString(): string {
    return `AgeIdentity(${this.recipient})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** Kind of an identity line, so callers can skip unsupported types with a clear message. */
export type IdentityKind = 'x25519' | 'post-quantum' | 'plugin';

/** Classifies an identity string by prefix; undefined when it is not an age identity at all. */
export function identityKind(text: string): IdentityKind | undefined {
  const upper = text.toUpperCase();
  if (upper.startsWith('AGE-SECRET-KEY-PQ-1')) return 'post-quantum';
  if (upper.startsWith('AGE-PLUGIN-')) return 'plugin';
  if (upper.startsWith('AGE-SECRET-KEY-1')) return 'x25519';
  return undefined;
}

/**
 * Parses an `AGE-SECRET-KEY-1…` string. The error says only *that* it is invalid, never echoes the text.
 * @param source where it came from, for messages and for {@link AgeIdentity.source}.
 */
export function parseAgeIdentity(text: string, source: string): AgeIdentity {
  const decoded = bech32Decode(text.trim());
  if (!decoded || decoded.hrp !== 'age-secret-key-' || decoded.data.length !== 32) {
    throw new SopsError('SOPS_MALFORMED', `invalid age identity in ${source}`);
  }
  try {
    return new AgeIdentity(x25519PrivateKey(decoded.data), source);
  } finally {
    decoded.data.fill(0);
  }
}

/** One header stanza: `-> type args…` followed by a base64 body. */
export interface AgeStanza {
  type: string;
  args: string[];
  body: Buffer;
}

/** A parsed age header; `macInput` is the exact bytes the header HMAC covers. */
interface AgeHeader {
  stanzas: AgeStanza[];
  mac: Buffer;
  macInput: Buffer;
  payload: Buffer;
}

function malformed(what: string): SopsError {
  return new SopsError('SOPS_MALFORMED', `malformed age file: ${what}`);
}

const RAW_B64 = /^[A-Za-z0-9+/]*$/;

/** age uses unpadded ("raw") std base64 in the header; reject anything Node's lenient decoder would accept. */
function decodeRawBase64(text: string, what: string): Buffer {
  if (!RAW_B64.test(text) || text.length % 4 === 1) throw malformed(`invalid base64 in ${what}`);
  const buf = Buffer.from(text, 'base64');
  // Non-canonical trailing bits would decode to the same bytes; age rejects them, so do we.
  if (buf.toString('base64').replace(/=+$/, '') !== text) throw malformed(`non-canonical base64 in ${what}`);
  return buf;
}

/** Strips the PEM armor (RFC 7468 strict, padded base64, 64 columns) if present; binary input passes through. */
function dearmor(input: Uint8Array): Buffer {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const head = buf.subarray(0, Math.min(buf.length, 4096)).toString('latin1').trimStart();
  if (!head.startsWith(ARMOR_BEGIN)) return buf;
  const text = buf.toString('latin1').trim().replace(/\r\n/g, '\n');
  const lines = text.split('\n');
  if (lines[0] !== ARMOR_BEGIN || lines[lines.length - 1] !== ARMOR_END) throw malformed('bad armor delimiters');
  const body = lines.slice(1, -1);
  if (body.length === 0) throw malformed('empty armor');
  for (const [i, line] of body.entries()) {
    const last = i === body.length - 1;
    if (line.length > 64 || (!last && line.length !== 64) || line.length === 0)
      throw malformed('bad armor line length');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line)) throw malformed('invalid base64 in armor');
  }
  const joined = body.join('');
  if (joined.length % 4 !== 0) throw malformed('armor base64 is not padded');
  return Buffer.from(joined, 'base64');
}

/** Parses the binary age header. */
function parseAgeHeader(file: Buffer): AgeHeader {
  let pos = 0;
  const nextLine = (): string => {
    const nl = file.indexOf(0x0a, pos);
    if (nl < 0) throw malformed('truncated header');
    const line = file.subarray(pos, nl).toString('latin1');
    pos = nl + 1;
    return line;
  };
  if (nextLine() !== INTRO) throw malformed('not an age v1 file');
  const stanzas: AgeStanza[] = [];
  for (;;) {
    const lineStart = pos;
    const line = nextLine();
    if (line.startsWith('--- ')) {
      const macInput = file.subarray(0, lineStart + 3);
      const mac = decodeRawBase64(line.slice(4), 'header MAC');
      if (mac.length !== 32) throw malformed('header MAC is not 32 bytes');
      return { stanzas, mac, macInput, payload: file.subarray(pos) };
    }
    if (!line.startsWith('-> ')) throw malformed('expected a stanza or the header MAC');
    const [type, ...args] = line.slice(3).split(' ');
    if (!type || args.some((a) => a.length === 0)) throw malformed('empty stanza argument');
    const chunks: Buffer[] = [];
    for (;;) {
      const bodyLine = nextLine();
      if (bodyLine.length > 64) throw malformed('stanza body line too long');
      chunks.push(decodeRawBase64(bodyLine, 'stanza body'));
      if (bodyLine.length < 64) break;
    }
    stanzas.push({ type, args, body: Buffer.concat(chunks) });
  }
}

function chachaOpen(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined;
  const decipher = crypto.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE)), decipher.final()]);
  } catch {
    return undefined;
  }
}

function decryptPayload(fileKey: Buffer, payload: Buffer): Buffer {
  if (payload.length < 16) throw malformed('payload nonce is truncated');
  const key = Buffer.from(crypto.hkdfSync('sha256', fileKey, payload.subarray(0, 16), 'payload', 32));
  const body = payload.subarray(16);
  const out: Buffer[] = [];
  const nonce = Buffer.alloc(12);
  let offset = 0;
  for (let counter = 0; ; counter++) {
    const remaining = body.length - offset;
    const last = remaining <= CHUNK_SIZE + TAG_SIZE;
    if (remaining < TAG_SIZE) throw malformed('payload is truncated');
    const size = last ? remaining : CHUNK_SIZE + TAG_SIZE;
    nonce.writeUIntBE(counter, 5, 6);
    nonce[11] = last ? 1 : 0;
    const chunk = chachaOpen(key, nonce, body.subarray(offset, offset + size));
    if (!chunk) throw new SopsError('SOPS_DECRYPT_FAILED', 'age payload failed authentication (truncated or tampered)');
    // Only an entirely empty payload may end in an empty chunk (age spec), otherwise the file was cut.
    if (last && chunk.length === 0 && counter > 0) throw malformed('empty final chunk');
    out.push(chunk);
    offset += size;
    if (last) return Buffer.concat(out);
  }
}

/** Result of {@link ageDecrypt} when no identity could open the file, to build a precise error upstream. */
export interface AgeMiss {
  /** Stanza types present in the header. */
  stanzaTypes: string[];
  /** true when at least one stanza was X25519 (so a key *could* have matched). */
  supported: boolean;
}

/**
 * Decrypts an age file (armored or binary) with the first identity that unwraps an X25519 stanza.
 * @returns the plaintext, or an {@link AgeMiss} when no identity matches (not an error: sops tries several entries).
 * @throws SopsError SOPS_MALFORMED for a broken file, SOPS_DECRYPT_FAILED for a bad header MAC or payload.
 */
export function ageDecrypt(input: Uint8Array, identities: readonly AgeIdentity[]): Buffer | AgeMiss {
  const header = parseAgeHeader(dearmor(input));
  const stanzaTypes = header.stanzas.map((s) => s.type);
  const x25519 = header.stanzas.filter((s) => s.type === 'X25519');
  // age requires X25519 stanzas to be alone in a file; we stay lenient and only use the ones we understand.
  for (const stanza of x25519) {
    for (const identity of identities) {
      const fileKey = identity.unwrap(stanza);
      if (!fileKey) continue;
      if (fileKey.length !== 16) throw malformed('file key is not 16 bytes');
      const hmacKey = Buffer.from(crypto.hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
      const mac = crypto.createHmac('sha256', hmacKey).update(header.macInput).digest();
      if (!crypto.timingSafeEqual(mac, header.mac)) {
        throw new SopsError('SOPS_DECRYPT_FAILED', 'age header MAC mismatch (tampered file)');
      }
      return decryptPayload(fileKey, header.payload);
    }
  }
  return { stanzaTypes, supported: x25519.length > 0 };
}
