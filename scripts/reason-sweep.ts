/**
 * @module After a whole-suite run: every deployment row the test daemons saved under SHIPARR_TEST_SWEEP_DIR
 * (`artifacts/<name>.db.jsonl-<id>`, see test/helpers/secret-sweep.ts saveDatabase) must carry a reason with a non-empty
 * summary. Exits 1 naming the artifact file and the row (id, repository, trigger) of each row without one.
 *
 * Usage: tsx scripts/reason-sweep.ts <sweep dir>
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? process.env.SHIPARR_TEST_SWEEP_DIR;
if (!dir) {
  console.error('usage: reason-sweep <sweep dir>');
  process.exit(2);
}

const artifactsDir = path.join(dir, 'artifacts');
let files: string[] = [];
try {
  files = readdirSync(artifactsDir)
    .filter((f) => f.includes('.db.jsonl'))
    .sort();
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

/** Why a stored `reason` column is not a usable reason, or null when it is one. */
function problem(raw: unknown): string | null {
  if (raw === null || raw === undefined || raw === '') return 'no reason';
  if (typeof raw !== 'string') return 'reason is not JSON text';
  let reason: unknown;
  try {
    reason = JSON.parse(raw);
  } catch {
    return 'reason is not valid JSON';
  }
  if (reason === null || typeof reason !== 'object') return 'no reason';
  const { kind, summary } = reason as { kind?: unknown; summary?: unknown };
  if (typeof kind !== 'string' || kind === '') return 'reason has no kind';
  if (typeof summary !== 'string' || summary.trim() === '') return 'reason has an empty summary';
  return null;
}

let rows = 0;
const misses: string[] = [];
for (const file of files) {
  const text = readFileSync(path.join(artifactsDir, file), 'utf8');
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let entry: { table?: unknown; row?: Record<string, unknown> };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      misses.push(`${file}:${i + 1}: not a JSON line`);
      continue;
    }
    if (entry.table !== 'deployments' || !entry.row) continue;
    rows++;
    const why = problem(entry.row['reason']);
    if (why) {
      const { id, repository_id: repo, trigger, status } = entry.row;
      misses.push(
        `${file}: deployment ${String(id)} (repository ${String(repo)}, trigger ${String(trigger)}, ${String(status)}): ${why}`,
      );
    }
  }
}

console.log(`reason sweep: ${rows} deployment rows checked in ${files.length} saved databases`);
if (misses.length > 0) {
  console.error(`reason sweep: ${misses.length} deployment row(s) without a reason:\n  ${misses.join('\n  ')}`);
  process.exit(1);
}
console.log('reason sweep: every deployment row has a reason');
