/**
 * @module Prepares raw V8 coverage (NODE_V8_COVERAGE files) for `c8 report` when one source file was run as
 * different JavaScript in different processes.
 *
 * That happens under tsx: the main thread imports `src/**\/*.ts` as ESM, while Piscina workers `require()` their task
 * files, so tsx compiles the same file to CommonJS there (other code, other offsets). c8 merges V8 coverage by URL
 * before applying source maps, so mixing both compilations of e.g. src/lib/exec.ts produces nonsense (an exec()
 * run hundreds of times reported as never run). This script gives every further compilation of a URL its own URL
 * (`exec.ts` → `exec.variant-1.ts`, source map entry moved along); c8 then maps each one through its own source map
 * back to the same `.ts` file and merges the results line by line.
 *
 * Usage: tsx scripts/coverage-variants.ts <NODE_V8_COVERAGE directory>   (rewrites the files in place)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

interface ScriptCov {
  url: string;
}
interface SourceMapEntry {
  lineLengths?: number[];
  data?: { mappings?: string } | null;
}
interface ProcessCov {
  result?: ScriptCov[];
  'source-map-cache'?: Record<string, SourceMapEntry>;
}

const dir = process.argv[2];
if (!dir) {
  console.error('usage: coverage-variants <coverage temp directory>');
  process.exit(2);
}

/** url → fingerprints of its compilations, in the order first seen (index 0 keeps the URL). */
const variants = new Map<string, string[]>();
let renamed = 0;

const fingerprint = (e: SourceMapEntry): string =>
  createHash('sha1')
    .update(JSON.stringify(e.lineLengths ?? null))
    .update(e.data?.mappings ?? '')
    .digest('hex');

const variantUrl = (url: string, n: number): string =>
  url.replace(/(\.[cm]?[jt]sx?)?$/, (ext) => `.variant-${n}${ext}`);

for (const name of fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()) {
  const file = path.join(dir, name);
  let cov: ProcessCov;
  try {
    cov = JSON.parse(fs.readFileSync(file, 'utf8')) as ProcessCov;
  } catch {
    continue; // a process killed while writing; c8 skips such files too
  }
  const cache = cov['source-map-cache'];
  if (!cov.result || !cache) continue;
  let changed = false;
  for (const script of cov.result) {
    const entry = cache[script.url];
    if (!entry || !script.url.startsWith('file:')) continue;
    const fp = fingerprint(entry);
    const seen = variants.get(script.url) ?? [];
    if (seen.length === 0) variants.set(script.url, seen);
    let n = seen.indexOf(fp);
    if (n < 0) n = seen.push(fp) - 1;
    if (n === 0) continue;
    const url = variantUrl(script.url, n);
    cache[url] = entry;
    delete cache[script.url];
    script.url = url;
    changed = true;
    renamed++;
  }
  if (changed) fs.writeFileSync(file, JSON.stringify(cov));
}

const multi = [...variants.values()].filter((v) => v.length > 1).length;
if (multi > 0)
  console.log(
    `coverage: ${multi} source files ran as more than one compilation (ESM + worker CJS); ${renamed} entries kept apart`,
  );
