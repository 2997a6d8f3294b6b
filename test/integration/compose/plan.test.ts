/**
 * @module The plan (src/compose/plan.ts) against the real Docker engine: per service create / recreate / keep /
 * remove with reasons, compared with what compose's own `--dry-run up -d` sees (it misses bind-mounted files and
 * inline configs, compose issue #11900), and the content-label override that makes a real `up` recreate them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { computePlan, contentOverride, type PlanInput } from '../../../src/compose/plan.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';
import type { ServicePlan } from '../../../src/domain/types.ts';
import {
  cleanupProject,
  compose,
  docker,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
} from '../../helpers/docker.ts';

const ENV_SECRET = `plan-secret-${randomBytes(6).toString('hex')}`;

function composeYaml(o: { env?: string; inline?: string; withC?: boolean; image: string }): string {
  const svc = (name: string, extra: string[] = []) => [
    `  ${name}:`,
    `    image: ${o.image}`,
    '    pull_policy: never',
    '    init: true',
    '    command: ["sleep", "3600"]',
    ...extra,
  ];
  return [
    'services:',
    ...svc('a', ['    environment:', `      API_TOKEN: ${JSON.stringify(o.env ?? ENV_SECRET)}`, '      MODE: "prod"']),
    ...svc('b', ['    volumes:', '      - ./conf/app.conf:/etc/app.conf:ro']),
    ...svc('c', ['    configs:', '      - source: motd', '        target: /etc/motd']),
    ...(o.withC === false ? [] : svc('d')),
    'configs:',
    '  motd:',
    `    content: ${JSON.stringify(o.inline ?? 'hello')}`,
    '',
  ].join('\n');
}

const byService = (s: ServicePlan[]) => Object.fromEntries(s.map((p) => [p.service, p]));

async function containerIds(project: string): Promise<Record<string, string>> {
  const r = await docker([
    'ps',
    '-a',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--format',
    '{{.Label "com.docker.compose.service"}} {{.ID}}',
  ]);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
}

test('plan: env, bind-mounted file, inline config, removed service; compose --dry-run misses what Shiparr catches', async (t: TestContext) => {
  if (!(await requireDocker(t))) return;
  const image = await ensureBusyboxImage();
  const root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-plan-it-'));
  const data = await mkdtemp(path.join(os.tmpdir(), 'shiparr-plan-gen-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  t.after(() => rm(data, { recursive: true, force: true }));
  const project = uniqueProjectName('plan');
  cleanupProject(t, project);
  await writeFile(path.join(root, 'compose.yaml'), composeYaml({ image }));
  await writeFile(path.join(root, 'README.md'), 'v1\n');
  await mkdir(path.join(root, 'conf'));
  await writeFile(path.join(root, 'conf/app.conf'), 'level=1\n');

  const input: PlanInput = {
    cwd: root,
    rootDir: root,
    project,
    files: [],
    removeOrphans: true,
    hmacKey: randomBytes(32).toString('hex'),
    timeoutMs: 60_000,
  };
  const override = path.join(data, 'generated', project, 'content.json');
  const apply = async () => {
    const o = await contentOverride(input, null, override);
    assert.equal(o.ok, true, JSON.stringify(o));
    const r = await composeUp({
      ...input,
      pull: 'never',
      build: false,
      removeOrphans: true,
      timeoutMs: 120_000,
      overrideFiles: [override],
    });
    assert.equal(r.ok, true, JSON.stringify(r));
  };
  const plan = async () => {
    const r = await computePlan(input, null);
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) throw new Error('unreachable');
    assert.doesNotMatch(JSON.stringify(r), new RegExp(ENV_SECRET));
    return r;
  };
  const dryRun = async () => {
    // compose with the override of the last apply: what compose alone would do without Shiparr's content hashes.
    const r = await compose(root, ['-p', project, '-f', 'compose.yaml', '-f', override, '--dry-run', 'up', '-d']);
    assert.equal(r.code, 0, r.output);
    return r.output;
  };

  // Nothing deployed yet: every service is new.
  const first = await plan();
  assert.deepEqual(
    first.services.map((s) => [s.service, s.action]),
    [
      ['a', 'create'],
      ['b', 'create'],
      ['c', 'create'],
      ['d', 'create'],
    ],
  );
  await apply();
  const ids = await containerIds(project);
  assert.equal(Object.keys(ids).length, 4);

  await t.test('unchanged (a README-only change): every service keep, noop', async () => {
    await writeFile(path.join(root, 'README.md'), 'v2\n');
    const p = await plan();
    assert.equal(p.noop, true, JSON.stringify(p.services));
    assert.ok(p.services.every((s) => s.action === 'keep' && s.reasons.length === 0));
  });

  await t.test('an env value change: that service recreate naming the key only, the others keep', async () => {
    await writeFile(path.join(root, 'compose.yaml'), composeYaml({ image, env: `${ENV_SECRET}-2` }));
    const p = byService((await plan()).services);
    assert.equal(p['a']?.action, 'recreate');
    assert.deepEqual(p['a']?.reasons, ['env changed (API_TOKEN)']);
    for (const s of ['b', 'c', 'd']) assert.equal(p[s]?.action, 'keep', s);
    await writeFile(path.join(root, 'compose.yaml'), composeYaml({ image }));
    assert.equal((await plan()).noop, true);
  });

  await t.test('a bind-mounted file change: compose dry run says Running, the plan says recreate', async () => {
    await writeFile(path.join(root, 'conf/app.conf'), 'level=2\n');
    assert.match(await dryRun(), new RegExp(`${project}-b-1\\s+Running`));
    const p = byService((await plan()).services);
    assert.equal(p['b']?.action, 'recreate');
    assert.deepEqual(p['b']?.reasons, ['bind-mounted file changed (conf/app.conf)']);
    for (const s of ['a', 'c', 'd']) assert.equal(p[s]?.action, 'keep', s);
    // With Shiparr's override a real up recreates it (compose alone would not).
    await apply();
    const after = await containerIds(project);
    assert.notEqual(after['b'], ids['b']);
    assert.equal(after['a'], ids['a']);
    assert.equal((await plan()).noop, true);
  });

  await t.test('an inline config change: compose dry run says Running, the plan says recreate', async () => {
    await writeFile(path.join(root, 'compose.yaml'), composeYaml({ image, inline: 'changed' }));
    assert.match(await dryRun(), new RegExp(`${project}-c-1\\s+Running`));
    const p = byService((await plan()).services);
    assert.equal(p['c']?.action, 'recreate');
    assert.deepEqual(p['c']?.reasons, ['inline config changed (config:motd)']);
    for (const s of ['a', 'b', 'd']) assert.equal(p[s]?.action, 'keep', s);
  });

  await t.test('a plan of a scratch copy maps its paths back to the live checkout', async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'shiparr-plan-scratch-'));
    t.after(() => rm(scratch, { recursive: true, force: true }));
    await writeFile(path.join(scratch, 'compose.yaml'), composeYaml({ image, inline: 'changed' }));
    await mkdir(path.join(scratch, 'conf'));
    await writeFile(path.join(scratch, 'conf/app.conf'), 'level=2\n');
    const r = await computePlan({ ...input, cwd: scratch, rootDir: scratch, liveRoot: root }, null);
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    const p = byService(r.services);
    assert.deepEqual(p['b']?.reasons, []);
    assert.equal(p['b']?.action, 'keep');
    assert.equal(p['c']?.action, 'recreate');
  });

  await t.test('a removed service: remove; a config change beyond content: config hash changed', async () => {
    await writeFile(
      path.join(root, 'compose.yaml'),
      composeYaml({ image, withC: false }).replace('"sleep", "3600"]', '"sleep", "3601"]'),
    );
    const p = byService((await plan()).services);
    assert.equal(p['d']?.action, 'remove');
    assert.match(p['d']?.reasons[0] ?? '', /removed service/);
    assert.equal(p['a']?.action, 'recreate');
    assert.deepEqual(p['a']?.reasons, ['config hash changed']);
    assert.deepEqual(p['b']?.action, 'keep');
  });
});
