/**
 * @module compose/images.ts against the real Docker engine: the images a project's services run, the images an engine
 * no longer has, and the pin override given to the compose-up task (overrideFiles) with compose's default file lookup.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { missingImages, readServiceImages, removePinOverride, writePinOverride } from '../../../src/compose/images.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';
import {
  cleanupProject,
  composeDir,
  docker,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
} from '../../helpers/docker.ts';

const up = { pull: 'never' as const, build: false, removeOrphans: true, timeoutMs: 120_000 };

/** Two images differing by a label, `<name>:a` and `<name>:b`; removed after the test. Resolves to their ids. */
async function twoImages(t: TestContext, name: string): Promise<{ a: string; b: string }> {
  const base = await ensureBusyboxImage();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-images-'));
  const ids: Record<string, string> = {};
  t.after(async () => {
    await docker(['rmi', '-f', `${name}:latest`, `${name}:a`, `${name}:b`]);
    await docker(['rmi', '-f', ...Object.values(ids)]);
    await rm(dir, { recursive: true, force: true });
  });
  for (const v of ['a', 'b']) {
    await writeFile(path.join(dir, `Dockerfile.${v}`), `FROM ${base}\nLABEL shiparr.test.variant=${v}\n`);
    const r = await docker(['build', '-q', '-t', `${name}:${v}`, '-f', path.join(dir, `Dockerfile.${v}`), dir], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
    assert.equal(r.code, 0, r.output);
    ids[v] = (await docker(['image', 'inspect', '-f', '{{.Id}}', `${name}:${v}`])).stdout.trim();
  }
  return { a: ids.a!, b: ids.b! };
}

const services = (image: string) =>
  [
    'services:',
    '  web:',
    `    image: ${JSON.stringify(image)}`,
    '    pull_policy: never',
    '    init: true',
    '    command: ["sleep", "300"]',
    '  once:',
    `    image: ${JSON.stringify(image)}`,
    '    pull_policy: never',
    '    init: true',
    '    command: ["true"]',
    '',
  ].join('\n');

const runningImageOf = async (project: string, service: string) => {
  const ps = await docker([
    'ps',
    '-aq',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--filter',
    `label=com.docker.compose.service=${service}`,
  ]);
  return (await docker(['inspect', '-f', '{{.Image}}', ps.stdout.trim()])).stdout.trim();
};

test('readServiceImages: one entry per service (exited one-shots too), the compose reference, the image id', async (t) => {
  if (!(await requireDocker(t))) return;
  const name = `shiparr-test/${uniqueProjectName('images-read')}`;
  const ids = await twoImages(t, name);
  const project = uniqueProjectName('images-read');
  cleanupProject(t, project);
  const cwd = await composeDir(t, services(`${name}:a`));
  const r = await composeUp({ cwd, project, files: [], ...up });
  assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}\n${r.output}`);

  const images = await readServiceImages(project);
  assert.deepEqual(images, [
    { service: 'once', image: `${name}:a`, imageId: ids.a, digest: null },
    { service: 'web', image: `${name}:a`, imageId: ids.a, digest: null },
  ]);
  assert.deepEqual(await readServiceImages(uniqueProjectName('no-such-project')), []);
});

test('missingImages: an id the engine has is not missing, an unknown one is', async (t) => {
  if (!(await requireDocker(t))) return;
  const name = `shiparr-test/${uniqueProjectName('images-missing')}`;
  const ids = await twoImages(t, name);
  const gone = { service: 'web', image: 'x:latest', imageId: `sha256:${'0'.repeat(64)}`, digest: null };
  const here = { service: 'db', image: `${name}:a`, imageId: ids.a, digest: null };
  assert.deepEqual(await missingImages([here, gone]), [gone]);
});

test('the pin override given as overrideFiles runs the pinned image id although the tag moved', async (t) => {
  if (!(await requireDocker(t))) return;
  const name = `shiparr-test/${uniqueProjectName('images-pin')}`;
  const ids = await twoImages(t, name);
  const project = uniqueProjectName('images-pin');
  cleanupProject(t, project);
  assert.equal((await docker(['tag', `${name}:b`, `${name}:latest`])).code, 0);
  const cwd = await composeDir(t, services(`${name}:latest`));
  // compose's own override file is still read when the compose files are found by the default lookup.
  await writeFile(path.join(cwd, 'compose.override.yaml'), 'services:\n  web:\n    labels:\n      picked: "yes"\n');
  const generated = await mkdtemp(path.join(os.tmpdir(), 'shiparr-generated-'));
  t.after(() => rm(generated, { recursive: true, force: true }));
  const pins = [
    { service: 'once', image: `${name}:latest`, imageId: ids.a, digest: null },
    { service: 'web', image: `${name}:latest`, imageId: ids.a, digest: null },
  ];
  const file = await writePinOverride(generated, pins);
  assert.equal(path.dirname(file), generated);
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), {
    services: {
      once: { image: ids.a, pull_policy: 'never' },
      web: { image: ids.a, pull_policy: 'never' },
    },
  });

  const pinned = await composeUp({ cwd, project, files: [], overrideFiles: [file], ...up });
  assert.equal(pinned.ok, true, pinned.ok ? '' : `${pinned.code}: ${pinned.message}\n${pinned.output}`);
  assert.equal(await runningImageOf(project, 'web'), ids.a);
  assert.equal(await runningImageOf(project, 'once'), ids.a);
  const label = await docker(['inspect', '-f', '{{index .Config.Labels "picked"}}', `${project}-web-1`]);
  assert.equal(label.stdout.trim(), 'yes', 'compose.override.yaml was applied too');
  // What was recorded while pinned: the pin is the reference the container was created with.
  assert.equal((await readServiceImages(project)).find((i) => i.service === 'web')?.image, ids.a);

  // Without the override the tag applies again (B), and the file is removed once.
  assert.equal(await removePinOverride(generated), true);
  assert.equal(await removePinOverride(generated), false);
  const plain = await composeUp({ cwd, project, files: [], ...up });
  assert.equal(plain.ok, true, plain.ok ? '' : `${plain.code}: ${plain.message}`);
  assert.equal(await runningImageOf(project, 'web'), ids.b);
});

test('compose-up refuses a relative override file and a missing default compose file', async (t) => {
  if (!(await requireDocker(t))) return;
  const cwd = await composeDir(t, 'services: {}\n', 'other-name.yaml');
  const relative = await composeUp({ cwd, project: 'p', files: [], overrideFiles: ['pins.json'], ...up });
  assert.equal(relative.ok, false);
  assert.equal(relative.ok ? '' : relative.code, 'COMPOSE_BAD_PATH');
  assert.match(relative.ok ? '' : relative.message, /pins\.json is not an absolute path/);
  const none = await composeUp({ cwd, project: 'p', files: [], overrideFiles: [path.join(cwd, 'x.json')], ...up });
  assert.equal(none.ok, false);
  assert.match(none.ok ? '' : none.message, /no compose file \(compose\.yaml/);
});
