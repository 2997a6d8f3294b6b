/**
 * @module The secret values of decrypted files, for masking: read in the worker that needs them (compose-up), so the
 * plaintext never travels back to the main thread. dotenv → the values; YAML/JSON → every scalar leaf; anything
 * else → its non-empty lines.
 */
import { lstat, readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { inferFormat } from './sops.ts';

/** Files larger than this are not read for masking (decrypted secrets are small). */
const MAX_FILE_BYTES = 1024 * 1024;
/** At most this many values are collected over all files. */
const MAX_VALUES = 10_000;

/** Strips one level of matching quotes, as compose's dotenv parser does. */
function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'" || t[0] === '`') && t.at(-1) === t[0]) return t.slice(1, -1);
  // Unquoted: an inline comment starts at " #".
  const hash = t.indexOf(' #');
  return hash >= 0 ? t.slice(0, hash).trim() : t;
}

function dotenvValues(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const value = unquote(line.slice(eq + 1));
    out.push(value);
    // Escaped multi-line values appear line by line in output.
    if (value.includes('\\n')) out.push(...value.split('\\n'));
  }
  return out;
}

function treeValues(text: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (out.length > MAX_VALUES) return;
    if (typeof v === 'string') {
      out.push(v);
      if (v.includes('\n')) out.push(...v.split('\n').map((l) => l.trim()));
    } else if (typeof v === 'number' || typeof v === 'bigint') out.push(String(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  for (const doc of parseAllDocuments(text)) {
    if ('errors' in doc && doc.errors.length) return text.split(/\r?\n/).map((l) => l.trim());
    walk(doc.toJS());
  }
  return out;
}

/**
 * The values found in `paths` (absolute paths of plaintext files this deploy wrote). Files that are missing,
 * not regular (a symlink is not followed), too large or unparseable as their format are read line by line or
 * skipped; this never throws.
 */
export async function secretValuesOfFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    try {
      const st = await lstat(path);
      if (!st.isFile() || st.size > MAX_FILE_BYTES) continue;
      const text = await readFile(path, 'utf8');
      const format = inferFormat(path);
      out.push(
        ...(format === 'dotenv' ? dotenvValues(text) : format === 'binary' ? text.split(/\r?\n/) : treeValues(text)),
      );
    } catch {
      // Gone or unreadable: nothing of it can show up in the output either.
    }
    if (out.length > MAX_VALUES) break;
  }
  return out
    .map((v) => v.trim())
    .filter(Boolean)
    .slice(0, MAX_VALUES);
}
