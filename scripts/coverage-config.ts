/**
 * @module Writes the c8 configuration for `c8 report`: .c8rc.json plus the src/ files that hold only TypeScript types.
 * Those compile to no JavaScript, so no process ever loads them and line coverage would count them as never run.
 *
 * Usage: tsx scripts/coverage-config.ts <output.json>
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const out = process.argv[2];
if (!out) {
  console.error('usage: coverage-config <output.json>');
  process.exit(2);
}

const walk = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });

const typeOnly = walk('src')
  .sort()
  .filter((file) => {
    const { outputText } = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, removeComments: true },
    });
    return !outputText
      .replace(/\/\/# sourceMappingURL=.*$/m, '')
      .replace(/export \{\};?/g, '')
      .trim();
  });

const base = JSON.parse(fs.readFileSync('.c8rc.json', 'utf8')) as { exclude?: string[] };
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ ...base, exclude: [...(base.exclude ?? []), ...typeOnly] }, null, 2));
console.log(`coverage: ${typeOnly.length} type-only files left out (${typeOnly.join(', ')})`);
