/**
 * @module Benchmark: decrypting a 200-variable SOPS dotenv file (age + AES-GCM + MAC, output emitted) versus a plain
 * read + dotenv parse of the same plaintext. Prints the median of N runs; run with `node --import tsx bench/decrypt.ts`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseAgeIdentities } from '../src/secrets/keys.ts';
import { decryptSopsFile } from '../src/secrets/sops.ts';
import { generateIdentity, sopsEncryptDotenv } from '../test/unit/secrets/helpers/sops-encrypt.ts';

const VARS = 200;
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const WARMUP = 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** The baseline parser: split lines, skip comments, split at the first "=". */
function parseDotenv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return samples;
}

const dir = await mkdtemp(join(tmpdir(), 'shiparr-bench-decrypt-'));
try {
  const id = generateIdentity();
  const items = Array.from({ length: VARS }, (_, i) => ({ key: `VAR_${i}`, value: `value-${i}-${'x'.repeat(24)}` }));
  const enc = join(dir, '.env.enc');
  const plain = join(dir, '.env');
  await writeFile(enc, sopsEncryptDotenv(items, { recipients: [id.recipient] }).text);
  await writeFile(plain, items.map((it) => `${it.key}=${it.value}\n`).join(''));
  const identities = parseAgeIdentities(id.identity, 'bench');

  const check = await decryptSopsFile(enc, { identities });
  if (parseDotenv(check.toString()).size !== VARS) throw new Error('benchmark file did not decrypt to 200 variables');

  const decrypt = median(await time(() => decryptSopsFile(enc, { identities })));
  const baseline = median(await time(async () => parseDotenv(await readFile(plain, 'utf8'))));
  console.log(`sops dotenv decrypt, ${VARS} vars (median of ${RUNS}): ${decrypt.toFixed(3)} ms/file`);
  console.log(`baseline readFile + dotenv parse (median of ${RUNS}): ${baseline.toFixed(3)} ms/file`);
  console.log(`ratio decrypt/baseline: ${(decrypt / baseline).toFixed(1)}x`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
