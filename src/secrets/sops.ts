/**
 * @module SOPS decryption entry points: format inference, data-key recovery through age, and whole-document
 * decryption with MAC verification for dotenv, YAML, JSON and binary files (what is supported: docs/sops.md).
 *
 *   bytes ─store─▶ { metadata, tree } ─age entries + identities─▶ data key ─TreeCrypt─▶ values + MAC ─▶ plaintext bytes
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { ageDecrypt } from './age.ts';
import type { AgeIdentity } from './age.ts';
import { parseDotenv } from './dotenv-store.ts';
import type { ParsedDocument } from './dotenv-store.ts';
import { SopsError } from './errors.ts';
import type { AgeKeyring } from './keys.ts';
import { parseMetadata } from './metadata.ts';
import type { SopsMetadata } from './metadata.ts';
import { TreeCrypt } from './tree-crypt.ts';
import { parseTreeDocument } from './yaml-store.ts';

/** The sops stores Shiparr supports. */
export type SopsFormat = 'dotenv' | 'yaml' | 'json' | 'binary';

/** Identities to try: a loaded keyring (preferred, gives better errors) or a plain list. */
export type Identities = AgeKeyring | readonly AgeIdentity[];

/** Encrypted files larger than this are refused: sops files are small, and the whole file is held in memory. */
const MAX_SOPS_FILE_BYTES = 64 * 1024 * 1024;

/**
 * The store for a file name, like sops' `FormatForPath` plus Shiparr's `.env.enc` convention:
 * `*.env`, `*.env.enc` → dotenv; `*.yaml`, `*.yml` → yaml; `*.json` → json; anything else → binary.
 */
export function inferFormat(fileName: string): SopsFormat {
  const name = basename(fileName);
  if (name.endsWith('.env') || name.endsWith('.env.enc') || name === '.env') return 'dotenv';
  if (name.endsWith('.yaml') || name.endsWith('.yml')) return 'yaml';
  if (name.endsWith('.json')) return 'json';
  return 'binary';
}

function parseStore(bytes: Uint8Array, format: SopsFormat): ParsedDocument {
  switch (format) {
    case 'dotenv':
      return parseDotenv(bytes);
    case 'yaml':
    case 'json':
    case 'binary':
      return parseTreeDocument(bytes, format);
  }
}

function asKeyring(ids: Identities): AgeKeyring {
  if ('identities' in ids && !Array.isArray(ids)) return ids as AgeKeyring;
  const list = ids as readonly AgeIdentity[];
  return { identities: [...list], sources: [...new Set(list.map((i) => i.source))], unsupported: 0 };
}

/**
 * Recovers the 32-byte data key from the file's age entries with any of the identities.
 * @throws SopsError SOPS_UNSUPPORTED_STANZA, SOPS_NO_MATCHING_KEY (naming recipients and key sources), SOPS_MALFORMED…
 */
function recoverDataKey(meta: SopsMetadata, ids: Identities): Buffer {
  const ring = asKeyring(ids);
  const fromWhere = ring.sources.length ? ring.sources.join(', ') : 'no key source';
  const ignored = ring.unsupported
    ? `; ${ring.unsupported} unsupported (post-quantum/plugin) identities were ignored`
    : '';
  if (meta.age.length === 0) {
    const others = meta.otherKeyTypes.join(', ') || 'none';
    throw new SopsError(
      'SOPS_NO_MATCHING_KEY',
      `file has no age recipients (master keys: ${others}); only age is supported`,
    );
  }
  const stanzaTypes = new Set<string>();
  let supported = false;
  let firstError: SopsError | undefined;
  for (const entry of meta.age) {
    let result;
    try {
      result = ageDecrypt(Buffer.from(entry.enc, 'utf8'), ring.identities);
    } catch (err) {
      // One broken entry must not hide a good one for another recipient.
      if (!(err instanceof SopsError)) throw err;
      firstError ??= err;
      continue;
    }
    if (Buffer.isBuffer(result)) {
      if (result.length !== 32) throw new SopsError('SOPS_MALFORMED', 'decrypted data key is not 32 bytes');
      return result;
    }
    for (const t of result.stanzaTypes) stanzaTypes.add(t);
    supported ||= result.supported;
  }
  if (firstError) throw firstError;
  if (!supported) {
    throw new SopsError(
      'SOPS_UNSUPPORTED_STANZA',
      `no supported age stanza (file uses: ${[...stanzaTypes].join(', ') || 'none'}); only X25519 recipients are supported`,
    );
  }
  const recipients = meta.age.map((e) => e.recipient).join(', ');
  throw new SopsError(
    'SOPS_NO_MATCHING_KEY',
    `no identity matches recipients: ${recipients} (keys from ${fromWhere}${ignored})`,
  );
}

/**
 * Decrypts a sops document given its data key (the AES/MAC layer alone; used for PGP-only files in tests and for
 * callers that obtained the key elsewhere). Verifies the MAC before returning anything.
 * @returns the plaintext document bytes (dotenv/yaml/json without sops metadata; binary as the exact bytes).
 */
export function decryptSopsDocumentWithDataKey(bytes: Uint8Array, format: SopsFormat, dataKey: Uint8Array): Buffer {
  if (dataKey.length !== 32) throw new SopsError('SOPS_MALFORMED', 'data key must be 32 bytes');
  const parsed = parseStore(bytes, format);
  const meta = parseMetadata(parsed.metadata);
  return parsed.decrypt(new TreeCrypt(Buffer.from(dataKey), meta));
}

/**
 * Decrypts a sops document with age identities and verifies its MAC.
 * @returns the plaintext document bytes.
 * @throws SopsError with a SOPS_* code; the message never contains plaintext, keys or identities.
 */
export function decryptSopsDocument(bytes: Uint8Array, format: SopsFormat, identities: Identities): Buffer {
  const parsed = parseStore(bytes, format);
  const meta = parseMetadata(parsed.metadata);
  const dataKey = recoverDataKey(meta, identities);
  try {
    return parsed.decrypt(new TreeCrypt(dataKey, meta));
  } finally {
    dataKey.fill(0);
  }
}

/** Options of {@link decryptSopsFile}. */
export interface DecryptFileOptions {
  /** Store to use; inferred from the file name when omitted. */
  format?: SopsFormat | undefined;
  identities: Identities;
  /** Refuse a symlink at `path` instead of following it (O_NOFOLLOW): files from an untrusted checkout. */
  noFollow?: boolean;
}

/**
 * Reads and decrypts a sops file.
 * @throws SopsError SOPS_READ_FAILED when unreadable or too large, else as {@link decryptSopsDocument} (messages are
 *   prefixed with the file path).
 */
export async function decryptSopsFile(path: string, options: DecryptFileOptions): Promise<Buffer> {
  let bytes: Buffer;
  try {
    // O_NONBLOCK: a FIFO must not block the open; it is refused as not a regular file right after.
    const fh = await open(
      path,
      constants.O_RDONLY | constants.O_NONBLOCK | (options.noFollow ? constants.O_NOFOLLOW : 0),
    );
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new SopsError('SOPS_READ_FAILED', `${path} is not a regular file`);
      if (st.size > MAX_SOPS_FILE_BYTES)
        throw new SopsError('SOPS_READ_FAILED', `${path} is larger than ${MAX_SOPS_FILE_BYTES} bytes`);
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof SopsError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' && options.noFollow)
      throw new SopsError('SOPS_BAD_PATH', `${path} is a symlink; SOPS files must be regular files`);
    throw new SopsError('SOPS_READ_FAILED', `cannot read ${path} (${code ?? 'read error'})`);
  }
  try {
    return decryptSopsDocument(bytes, options.format ?? inferFormat(path), options.identities);
  } catch (err) {
    if (err instanceof SopsError) throw new SopsError(err.code, `${path}: ${err.message}`, { cause: err });
    throw err;
  }
}
