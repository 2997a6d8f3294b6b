/**
 * @module `shiparr decrypt <file> [--format F]`: decrypts a SOPS file with the daemon's own decryptor and prints the
 * plaintext, so operators can check keys and files exactly as a deploy would see them.
 */
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SopsError } from '../secrets/errors.ts';
import { loadAgeIdentities } from '../secrets/keys.ts';
import { decryptSopsFile } from '../secrets/sops.ts';
import type { SopsFormat } from '../secrets/sops.ts';

const FORMATS: readonly SopsFormat[] = ['dotenv', 'yaml', 'json', 'binary'];

const USAGE = `usage: shiparr decrypt <file> [--format dotenv|yaml|json|binary]

Decrypts a SOPS file (age recipients) and prints the plaintext to stdout.
Keys: SOPS_AGE_KEY_FILE and/or SOPS_AGE_KEY, else $XDG_CONFIG_HOME/sops/age/keys.txt (~/.config/sops/age/keys.txt).
The format is inferred from the name when not given (.env/.env.enc → dotenv, .yaml/.yml, .json, else binary).
`;

function write(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** sops' default key file location, used when neither env var is set. */
async function defaultKeyFile(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  const file = join(base, 'sops', 'age', 'keys.txt');
  try {
    await access(file);
    return file;
  } catch {
    return undefined;
  }
}

/**
 * Runs `shiparr decrypt`.
 * @returns the exit code: 0 success, 1 decryption failure, 2 usage error.
 */
export async function decryptCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  let file: string | undefined;
  let format: SopsFormat | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-h' || arg === '--help') {
      await write(out, USAGE);
      return 0;
    }
    let value: string | undefined;
    if (arg === '--format' || arg === '-f') value = args[++i];
    else if (arg.startsWith('--format=')) value = arg.slice('--format='.length);
    else if (arg.startsWith('-') && arg !== '-') {
      await write(err, `shiparr decrypt: unknown option ${arg}\n${USAGE}`);
      return 2;
    } else if (file === undefined) {
      file = arg;
      continue;
    } else {
      await write(err, `shiparr decrypt: only one file may be given\n${USAGE}`);
      return 2;
    }
    if (!value || !FORMATS.includes(value as SopsFormat)) {
      await write(err, `shiparr decrypt: --format must be one of ${FORMATS.join(', ')}\n`);
      return 2;
    }
    format = value as SopsFormat;
  }
  if (!file) {
    await write(err, USAGE);
    return 2;
  }
  try {
    const keyFile = env.SOPS_AGE_KEY_FILE || (env.SOPS_AGE_KEY ? undefined : await defaultKeyFile(env));
    const identities = await loadAgeIdentities({ keyFile, key: env.SOPS_AGE_KEY });
    const plaintext = await decryptSopsFile(file, { format, identities });
    await write(out, plaintext);
    return 0;
  } catch (e) {
    if (!(e instanceof SopsError)) throw e;
    await write(err, `shiparr decrypt: ${e.message} [${e.code}]\n`);
    return 1;
  }
}
