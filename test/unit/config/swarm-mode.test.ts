/** @module The repository `mode` key: compose by default (and absent from the resolved config), swarm when set. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadProjects } from '../../../src/config/load.ts';

const roots: string[] = [];
after(() => Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true }))));

async function load(repo: string) {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'shiparr-mode-'));
  roots.push(base);
  const dir = path.join(base, 'projects');
  await fs.mkdir(dir);
  const file = path.join(dir, 'p.yaml');
  await fs.writeFile(file, `project: p\nrepositories:\n  app:\n    url: github.com/u/app.git\n${repo}`);
  const r = await loadProjects(dir, { env: {}, dataPath: path.join(base, 'data') });
  return { ...r, file, repo: r.projects[0]?.repositories[0] };
}

test('mode defaults to compose: nothing in the resolved config, the config hash of a compose repository unchanged', async () => {
  const plain = await load('');
  const explicit = await load('    mode: compose\n');
  assert.deepEqual(plain.errors, []);
  assert.equal(plain.repo && 'mode' in plain.repo, false);
  assert.equal(explicit.repo?.configHash, plain.repo?.configHash);
});

test('mode swarm is resolved and changes the config hash (a switch redeploys)', async () => {
  const plain = await load('');
  const swarm = await load('    mode: swarm\n    docker_host: tcp://manager:2375\n');
  assert.deepEqual(swarm.errors, []);
  assert.equal(swarm.repo?.mode, 'swarm');
  assert.notEqual(swarm.repo?.configHash, plain.repo?.configHash);
});

test('bad input: an unknown mode and build with swarm are errors with file, key path and reason', async () => {
  const unknown = await load('    mode: kubernetes\n');
  assert.equal(unknown.projects.length, 0);
  assert.equal(unknown.errors[0]?.file, unknown.file);
  assert.equal(unknown.errors[0]?.path, 'repositories.app.mode');
  assert.match(unknown.errors[0]?.message ?? '', /compose|swarm/);
  const build = await load('    mode: swarm\n    build: true\n');
  assert.equal(build.projects.length, 0);
  assert.deepEqual(
    build.errors.map((e) => [e.file, e.path, e.message]),
    [
      [
        build.file,
        'repositories.app.build',
        'mode swarm cannot build images (docker stack deploy ignores build:); push the image instead',
      ],
    ],
  );
});
