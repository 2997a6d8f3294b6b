/**
 * @module `npm run schema`: writes config/project.schema.json from the zod schema.
 * `npm run schema -- --check` only compares and exits 1 when the committed file is stale (for CI).
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderProjectJsonSchema } from '../src/config/json-schema.ts';

const target = fileURLToPath(new URL('../config/project.schema.json', import.meta.url));
const wanted = renderProjectJsonSchema();

if (process.argv.includes('--check')) {
  const current = await fs.readFile(target, 'utf8').catch(() => '');
  if (current !== wanted) {
    console.error(`${target} is out of date: run npm run schema`);
    process.exitCode = 1;
  } else {
    console.log(`${target} is up to date`);
  }
} else {
  await fs.writeFile(target, wanted);
  console.log(`wrote ${target}`);
}
