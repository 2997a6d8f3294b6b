/** @module The committed JSON Schema matches the zod schema, and the shipped example validates. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PROJECT_SCHEMA_ID, projectJsonSchema, renderProjectJsonSchema } from '../../../src/config/json-schema.ts';
import { loadProjectFile } from '../../../src/config/load.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

test('config/project.schema.json is up to date (run `npm run schema` if this fails)', async () => {
  const committed = await fs.readFile(path.join(repoRoot, 'config/project.schema.json'), 'utf8');
  assert.equal(committed, renderProjectJsonSchema());
});

test('the schema has $id, title, and describes the project file strictly', () => {
  const s = projectJsonSchema() as {
    $id: string;
    title: string;
    required: string[];
    additionalProperties: boolean;
    properties: Record<string, unknown>;
  };
  assert.equal(s.$id, PROJECT_SCHEMA_ID);
  assert.equal(s.title, 'Shiparr project file');
  assert.deepEqual([...s.required].sort(), ['project', 'repositories']);
  assert.equal(s.additionalProperties, false);
  assert.ok('global_notifications' in s.properties);
});

test('config/projects/example.yaml validates with no environment variables set', async () => {
  const dataPath = await fs.mkdtemp(path.join(os.tmpdir(), 'shiparr-example-'));
  try {
    const r = await loadProjectFile(path.join(repoRoot, 'config/projects/example.yaml'), { env: {}, dataPath });
    assert.deepEqual(r.errors, []);
    const repo = r.project?.repositories[0];
    assert.equal(r.project?.name, 'example');
    assert.equal(repo?.url, 'https://github.com/shiparr/example-stack.git');
    assert.equal(repo?.token, undefined);
    assert.equal(repo?.enabled, true, 'the example is live so `npm start` shows a repository');
  } finally {
    await fs.rm(dataPath, { recursive: true, force: true });
  }
});
