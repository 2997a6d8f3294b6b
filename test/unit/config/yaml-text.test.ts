/** @module Large project files are parsed on a worker thread: same result as in place, and the event loop turns meanwhile. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadProjects } from '../../../src/config/load.ts';
import { OFF_THREAD_BYTES, parseYamlText, parseYamlTextAsync } from '../../../src/config/yaml-text.ts';

/** A project file with `n` repositories, well above the off-thread threshold for n ≥ 1,000. */
function bigProject(n: number): string {
  const lines = ['project: fleet', 'repositories:'];
  for (let i = 0; i < n; i++) lines.push(`  app${i}:`, `    url: https://git.example.test/app${i}.git`);
  return `${lines.join('\n')}\n`;
}

test('a large text parsed off the main thread equals the in-place parse, and the loop turns while it runs', async () => {
  const text = bigProject(1000);
  assert.ok(text.length > OFF_THREAD_BYTES);
  let turned = false;
  setImmediate(() => (turned = true));
  const off = await parseYamlTextAsync(text);
  assert.equal(turned, true, 'a setImmediate queued before the parse ran before it finished');
  assert.deepEqual(off, parseYamlText(text));
  assert.equal(off.kind, 'value');
});

test('a small text is parsed in place (no thread): the result is there before the next loop turn', async () => {
  let turned = false;
  setImmediate(() => (turned = true));
  const r = await parseYamlTextAsync('project: x\n');
  assert.equal(turned, false);
  assert.deepEqual(r, { kind: 'value', value: { project: 'x' } });
});

test('syntax errors and alias bombs give the same sentences off the thread as in place', async () => {
  const pad = `# ${'x'.repeat(OFF_THREAD_BYTES)}\n`;
  const broken = `${pad}project: a\nrepositories:\n  b: [unclosed\n`;
  const offBroken = await parseYamlTextAsync(broken);
  assert.equal(offBroken.kind, 'syntax');
  assert.deepEqual(offBroken, parseYamlText(broken));
  assert.match(offBroken.kind === 'syntax' ? (offBroken.messages[0] ?? '') : '', /^YAML syntax error at line \d+/);

  const bomb = `${pad}a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
  const offBomb = await parseYamlTextAsync(bomb);
  assert.equal(offBomb.kind, 'convert');
  assert.deepEqual(offBomb, parseYamlText(bomb));
});

test('loading a 1,000-repository file through the loader gives every repository', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shiparr-yaml-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'projects'));
  await fs.writeFile(path.join(dir, 'projects', 'fleet.yaml'), bigProject(1000));
  const r = await loadProjects(path.join(dir, 'projects'), { env: {}, dataPath: path.join(dir, 'data') });
  assert.deepEqual(r.errors, []);
  assert.equal(r.projects[0]?.repositories.length, 1000);
});
