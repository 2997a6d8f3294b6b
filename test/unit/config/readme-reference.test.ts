/** @module The README's configuration reference is checked against the zod schema and the settings, so it cannot rot. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ProjectFileSchema, RepositorySchema } from '../../../src/config/schema.ts';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const envExample = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');

test('every repository key of the schema is documented in the README table', () => {
  for (const key of Object.keys(RepositorySchema.shape))
    assert.ok(readme.includes(`| \`${key}\` |`), `README lacks repository key ${key}`);
});

test('every project key of the schema is documented in the README', () => {
  for (const key of Object.keys(ProjectFileSchema.shape))
    assert.ok(readme.includes(`\`${key}\``), `README lacks project key ${key}`);
});

test('every setting is documented in the README and in .env.example', () => {
  const settingsSource = readFileSync(new URL('../../../src/config/settings.ts', import.meta.url), 'utf8');
  const vars = [...settingsSource.matchAll(/^\s+([A-Z][A-Z0-9_]+): /gm)].map((m) => m[1] as string);
  assert.ok(vars.length >= 15, `found ${vars.length} settings`);
  for (const v of vars) {
    assert.ok(readme.includes(`\`${v}\``), `README lacks ${v}`);
    assert.ok(new RegExp(`^${v}=`, 'm').test(envExample), `.env.example lacks ${v}`);
  }
});
