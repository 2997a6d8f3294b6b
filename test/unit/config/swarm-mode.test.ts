/** @module The repository `mode` key: compose by default (and absent from the resolved config), swarm when set. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { repoLoader } from '../../helpers/load-repo.ts';

const load = repoLoader('shiparr-mode-');

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
