/**
 * @module After a whole-suite run: searches every artifact the tests saved under SHIPARR_TEST_SWEEP_DIR (daemon logs
 * at debug level, database rows, API answers, spawned daemons' output) for every secret the tests registered
 * (test/helpers/secret-sweep.ts). Exits 1 listing the artifact and the secret's label (never the value) for each hit.
 *
 * Usage: tsx scripts/secret-sweep.ts <sweep dir>
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? process.env.SHIPARR_TEST_SWEEP_DIR;
if (!dir) {
  console.error('usage: secret-sweep <sweep dir>');
  process.exit(2);
}

const secrets = new Map<string, string>();
try {
  for (const line of readFileSync(path.join(dir, 'secrets.jsonl'), 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const { label, value } = JSON.parse(line) as { label: string; value: string };
    if (!secrets.has(value)) secrets.set(value, label);
  }
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

const artifactsDir = path.join(dir, 'artifacts');
let files: string[] = [];
try {
  files = readdirSync(artifactsDir).map((f) => path.join(artifactsDir, f));
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

let bytes = 0;
const hits: string[] = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  bytes += statSync(file).size;
  // JSON artifacts escape some characters; search the raw text and its JSON-decoded form alike.
  for (const [value, label] of secrets) {
    if (text.includes(value) || text.includes(JSON.stringify(value).slice(1, -1))) {
      hits.push(`${path.basename(file)}: a secret registered as "${label}" (${value.length} characters)`);
    }
  }
}

console.log(
  `secret sweep: ${secrets.size} secret values searched in ${files.length} artifacts ` +
    `(${(bytes / 1024 / 1024).toFixed(1)} MB of logs, database rows and API answers)`,
);
if (files.length === 0 || secrets.size === 0) {
  console.error('secret sweep: nothing to search; the test helpers did not record artifacts or secrets');
  process.exit(1);
}
if (hits.length > 0) {
  console.error(`secret sweep: ${hits.length} leak(s) found:\n  ${hits.join('\n  ')}`);
  process.exit(1);
}
console.log('secret sweep: no secret found');
