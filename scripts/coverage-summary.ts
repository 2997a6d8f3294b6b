/**
 * @module Prints line coverage per top-level folder of src/ (plus the files directly in src/ and the total) from the
 * json-summary report that c8 writes to coverage/coverage-summary.json. Reporting only: the 80 % gate is c8's own
 * check-coverage (see .c8rc.json). Exits 1 only when there is no report to read.
 * Usage: tsx scripts/coverage-summary.ts [path/to/coverage-summary.json]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Metric {
  total: number;
  covered: number;
}
type Summary = Record<string, { lines: Metric }>;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reportPath = path.resolve(root, process.argv[2] ?? 'coverage/coverage-summary.json');
/** Files below this share of lines are listed after the table, so thin spots are visible without opening the HTML. */
const THIN = 70;
const MAX_LISTED = 15;

let summary: Summary;
try {
  summary = JSON.parse(fs.readFileSync(reportPath, 'utf8')) as Summary;
} catch (err) {
  console.error(`coverage summary: cannot read ${path.relative(root, reportPath)}: ${(err as Error).message}`);
  process.exit(1);
}

/** Truncated to 2 decimals like istanbul, so the total matches the figure c8's gate reports. */
const pct = (m: Metric): string =>
  m.total === 0 ? '100.00' : (Math.floor((10_000 * m.covered) / m.total) / 100).toFixed(2);
const src = path.join(root, 'src') + path.sep;
const folders = new Map<string, Metric & { files: number }>();
const thin: { file: string; lines: Metric }[] = [];

for (const [file, metrics] of Object.entries(summary)) {
  if (file === 'total') continue;
  const abs = path.resolve(root, file);
  const rel = abs.startsWith(src) ? abs.slice(src.length) : path.relative(root, abs);
  const parts = rel.split(path.sep);
  const folder = abs.startsWith(src) ? (parts.length > 1 ? `${parts[0]}/` : '(src/*.ts)') : '(outside src)';
  const f = folders.get(folder) ?? { total: 0, covered: 0, files: 0 };
  f.total += metrics.lines.total;
  f.covered += metrics.lines.covered;
  f.files += 1;
  folders.set(folder, f);
  if (metrics.lines.total > 0 && (100 * metrics.lines.covered) / metrics.lines.total < THIN) {
    thin.push({ file: path.relative(root, abs), lines: metrics.lines });
  }
}

const rows = [...folders.entries()].sort(([a], [b]) => a.localeCompare(b));
const total = summary['total']?.lines ?? { total: 0, covered: 0 };
const width = Math.max(12, ...rows.map(([name]) => name.length));
const line = (name: string, m: Metric, files: string): string =>
  `${name.padEnd(width)}  ${pct(m).padStart(7)} %  ${`${m.covered}/${m.total}`.padStart(11)}  ${files.padStart(5)}`;

console.log('\nLine coverage by src/ folder');
console.log(`${'folder'.padEnd(width)}  ${'lines'.padStart(9)}  ${'covered'.padStart(11)}  ${'files'.padStart(5)}`);
for (const [name, m] of rows) console.log(line(name, m, String(m.files)));
console.log(line('total', total, String(rows.reduce((n, [, m]) => n + m.files, 0))));

if (thin.length > 0) {
  console.log(`\nFiles below ${THIN} % of lines:`);
  thin.sort((a, b) => a.lines.covered / a.lines.total - b.lines.covered / b.lines.total);
  for (const t of thin.slice(0, MAX_LISTED)) {
    console.log(`  ${pct(t.lines).padStart(6)} %  ${t.file} (${t.lines.covered}/${t.lines.total})`);
  }
  if (thin.length > MAX_LISTED)
    console.log(`  … and ${thin.length - MAX_LISTED} more (details: coverage/lcov-report/index.html)`);
}
