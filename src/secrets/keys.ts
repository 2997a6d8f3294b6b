/** @module Loading age identities the way sops does: `SOPS_AGE_KEY_FILE` content and/or inline `SOPS_AGE_KEY`. */
import { readFile } from 'node:fs/promises';
import { type AgeIdentity, identityKind, parseAgeIdentity } from './age.ts';
import { SopsError } from './errors.ts';

/** The identities available for decryption, plus what was skipped, for precise "no matching key" errors. */
export interface AgeKeyring {
  identities: AgeIdentity[];
  /** Human descriptions of where keys were looked for (file paths, `SOPS_AGE_KEY`). */
  sources: string[];
  /** Count of identities of types this implementation cannot use (post-quantum, plugins). */
  unsupported: number;
}

/** Where to load identities from; usually `{ keyFile: env.SOPS_AGE_KEY_FILE, key: env.SOPS_AGE_KEY }`. */
export interface AgeKeySources {
  keyFile?: string | undefined;
  key?: string | undefined;
}

/**
 * Parses identity text: one identity per line, `#` comments and blank lines ignored (age key file format).
 * `SOPS_AGE_KEY` may also separate keys by other whitespace, so split on all whitespace after dropping comments.
 */
export function parseAgeIdentities(text: string, source: string): AgeKeyring {
  const identities: AgeIdentity[] = [];
  let unsupported = 0;
  const lines = text.split(/\r?\n/);
  for (const [i, rawLine] of lines.entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    for (const token of line.split(/\s+/)) {
      const where = `${source} (line ${i + 1})`;
      const kind = identityKind(token);
      if (kind === undefined) throw new SopsError('SOPS_MALFORMED', `not an age identity in ${where}`);
      if (kind !== 'x25519') {
        unsupported++;
        continue;
      }
      identities.push(parseAgeIdentity(token, where));
    }
  }
  return { identities, sources: [source], unsupported };
}

/**
 * Loads age identities from a key file and/or inline key text (both may be given; all identities are tried).
 * @throws SopsError SOPS_NO_KEY when nothing is configured, the file is unreadable, or no identity was found;
 *   SOPS_MALFORMED when a line is not a valid identity (the line is never echoed).
 */
export async function loadAgeIdentities(sources: AgeKeySources): Promise<AgeKeyring> {
  const rings: AgeKeyring[] = [];
  if (sources.keyFile) {
    let text: string;
    try {
      text = await readFile(sources.keyFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'read error';
      // A missing default key file (the container image sets SOPS_AGE_KEY_FILE) is fine when an inline key is given.
      if (!(code === 'ENOENT' && sources.key?.trim())) {
        throw new SopsError('SOPS_NO_KEY', `cannot read age key file ${sources.keyFile} (${code})`);
      }
      text = '';
    }
    if (text) rings.push(parseAgeIdentities(text, sources.keyFile));
  }
  if (sources.key?.trim()) rings.push(parseAgeIdentities(sources.key, 'SOPS_AGE_KEY'));
  if (rings.length === 0) {
    throw new SopsError('SOPS_NO_KEY', 'no age key configured (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)');
  }
  const ring: AgeKeyring = {
    identities: rings.flatMap((r) => r.identities),
    sources: rings.flatMap((r) => r.sources),
    unsupported: rings.reduce((n, r) => n + r.unsupported, 0),
  };
  // Only unsupported identities is not fatal here: the file may carry only unsupported stanzas too, and
  // the decryptor then gives the more useful "no supported age stanza" error.
  if (ring.identities.length === 0 && ring.unsupported === 0) {
    throw new SopsError('SOPS_NO_KEY', `no age identity found in ${ring.sources.join(', ')}`);
  }
  return ring;
}
