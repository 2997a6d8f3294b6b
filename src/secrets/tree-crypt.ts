/**
 * @module Per-document decryption state shared by all stores: decrypts leaves with their path AAD, feeds the
 * SHA-512 MAC in document order, and verifies it against the stored `mac` at the end (sops `Tree.Decrypt`).
 */
import crypto from 'node:crypto';
import type { Hash } from 'node:crypto';
import { decryptValue, looksEncrypted, normalizeLastModified } from './cipher.ts';
import type { DecryptedValue } from './cipher.ts';
import { SopsError } from './errors.ts';
import { shouldBeEncrypted } from './metadata.ts';
import type { SopsMetadata } from './metadata.ts';

// sha256("sops"): the MAC of a mac_only_encrypted file starts with it so it differs from a full MAC.
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

/** sops' AAD for a value: `join(path, ":") + ":"` (list indices are never part of the path). */
const aadFor = (path: readonly string[]): string => `${path.join(':')}:`;

/** Human location of a value for messages: key names only. */
const where = (path: readonly string[]): string => (path.length ? path.join('.') : '(top level)');

export class TreeCrypt {
  readonly #key: Buffer;
  readonly #meta: SopsMetadata;
  // Two MACs: "modern" hashes unencrypted values as current sops does; "legacy" as older sops did (JSON numbers
  // as float64, YAML timestamps as strings). Both are computed over authenticated data; either may match.
  readonly #modern: Hash;
  readonly #legacy: Hash;

  constructor(dataKey: Buffer, meta: SopsMetadata) {
    this.#key = dataKey;
    this.#meta = meta;
    this.#modern = crypto.createHash('sha512');
    this.#legacy = crypto.createHash('sha512');
    if (meta.macOnlyEncrypted) {
      this.#modern.update(MAC_ONLY_ENCRYPTED_INIT);
      this.#legacy.update(MAC_ONLY_ENCRYPTED_INIT);
    }
  }

  /** Whether the leaf at `path` is encrypted under the file's rules. */
  isEncrypted(path: readonly string[], comments: readonly string[] = []): boolean {
    return shouldBeEncrypted(this.#meta.rules, path, comments);
  }

  /**
   * Decrypts an encrypted leaf and hashes its plaintext. The empty string is sops' encoding of an empty value.
   * @returns undefined for the empty string (no ENC at all), else the decrypted value.
   */
  decryptLeaf(value: unknown, path: readonly string[]): DecryptedValue | undefined {
    if (typeof value !== 'string') {
      throw new SopsError('SOPS_MALFORMED', `expected an encrypted string at ${where(path)}`);
    }
    if (value === '') return undefined;
    const dec = decryptValue(value, this.#key, aadFor(path), where(path));
    if (dec.type === 'comment') throw new SopsError('SOPS_MALFORMED', `value at ${where(path)} has type comment`);
    this.#modern.update(dec.raw);
    this.#legacy.update(dec.raw);
    return dec;
  }

  /** Hashes an unencrypted leaf (skipped with mac_only_encrypted). `legacy` defaults to `modern`. */
  plainLeaf(modern: string | Buffer, legacy: string | Buffer = modern): void {
    if (this.#meta.macOnlyEncrypted) return;
    this.#modern.update(modern);
    this.#legacy.update(legacy);
  }

  /**
   * Decrypts a comment if it is an `ENC[…]` value. Comments are never in the MAC, and like sops a comment that does
   * not decrypt is kept as written (older sops did not encrypt comments).
   */
  comment(text: string, path: readonly string[]): string {
    if (!looksEncrypted(text)) return text;
    try {
      const dec = decryptValue(text, this.#key, aadFor(path), where(path));
      return dec.raw.toString('utf8');
    } catch {
      return text;
    }
  }

  /**
   * Compares the computed MAC with the stored one (decrypted with AAD = RFC3339 lastmodified).
   * @throws SopsError SOPS_MAC_MISMATCH; the message never contains either MAC.
   */
  verify(): void {
    const { mac, lastModified } = this.#meta;
    if (mac === '') throw new SopsError('SOPS_MAC_MISMATCH', 'file has no MAC; refusing to trust it');
    let stored: string;
    try {
      stored = decryptValue(mac, this.#key, normalizeLastModified(lastModified), 'sops.mac').raw.toString('latin1');
    } catch (err) {
      if (err instanceof SopsError && err.code === 'SOPS_MALFORMED') throw err;
      throw new SopsError('SOPS_MAC_MISMATCH', 'cannot decrypt the file MAC (wrong data key or tampered metadata)');
    }
    const modern = this.#modern.digest('hex').toUpperCase();
    const legacy = this.#legacy.digest('hex').toUpperCase();
    if (stored !== modern && stored !== legacy) {
      throw new SopsError(
        'SOPS_MAC_MISMATCH',
        'MAC mismatch: the file was modified after encryption; refusing to use it',
      );
    }
  }
}
