/**
 * @module sops' dotenv store (stores/dotenv/store.go): lines split on "\n" only, `#` comments, `KEY=VALUE` split at the
 * first `=` with nothing trimmed, `\n` escapes, and the flattened `sops_*` metadata lines.
 */
import { SopsError } from './errors.ts';
import { unflattenMetadata } from './metadata.ts';
import type { TreeCrypt } from './tree-crypt.ts';

type Item = { kind: 'comment'; text: string } | { kind: 'pair'; key: string; value: string };

/** A parsed sops dotenv file: the metadata mapping and a decryptor that verifies the MAC before emitting. */
export interface ParsedDocument {
  metadata: unknown;
  /** Decrypts, verifies the MAC, then returns the plaintext document bytes. */
  decrypt(crypt: TreeCrypt): Buffer;
}

const NEWLINE = Buffer.from('\n');
const ESCAPED_NEWLINE = Buffer.from('\\n');

/** Replaces raw newlines with the two characters `\n`, on bytes so non-UTF-8 plaintext survives. */
function escapeNewlines(raw: Buffer): Buffer {
  if (!raw.includes(0x0a)) return raw;
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = raw.indexOf(0x0a); i >= 0; i = raw.indexOf(0x0a, start)) {
    parts.push(raw.subarray(start, i), ESCAPED_NEWLINE);
    start = i + 1;
  }
  parts.push(raw.subarray(start));
  return Buffer.concat(parts);
}

/** Parses a sops dotenv document. @throws SopsError SOPS_MALFORMED */
export function parseDotenv(input: Uint8Array): ParsedDocument {
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  const items: Item[] = [];
  const meta: [string, string][] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.length === 0) continue;
    if (line.startsWith('#')) {
      items.push({ kind: 'comment', text: line.slice(1) });
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new SopsError('SOPS_MALFORMED', `invalid dotenv input line ${i + 1}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).replaceAll('\\n', '\n');
    if (key.startsWith('sops_')) meta.push([key.slice(5), value]);
    else items.push({ kind: 'pair', key, value });
  }
  if (meta.length === 0) throw new SopsError('SOPS_MALFORMED', 'sops metadata not found (no sops_* lines)');
  return {
    metadata: unflattenMetadata(meta),
    decrypt(crypt) {
      const out: Buffer[] = [];
      let comments: string[] = [];
      for (const item of items) {
        if (item.kind === 'comment') {
          // Top-level comments are walked with the empty path, whose AAD is ":".
          const plain = crypt.comment(item.text, []);
          comments.push(plain);
          out.push(Buffer.from(`#${plain}`), NEWLINE);
          continue;
        }
        const path = [item.key];
        let value: Buffer;
        if (crypt.isEncrypted(path, comments)) {
          const dec = crypt.decryptLeaf(item.value, path);
          value = dec ? escapeNewlines(dec.raw) : Buffer.alloc(0);
        } else {
          crypt.plainLeaf(item.value);
          value = Buffer.from(item.value.replaceAll('\n', '\\n'));
        }
        comments = [];
        out.push(Buffer.from(`${item.key}=`), value, NEWLINE);
      }
      crypt.verify();
      return Buffer.concat(out);
    },
  };
}
