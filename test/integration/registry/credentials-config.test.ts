/**
 * @module Registry credentials in the configuration: a project file's `registries` (with `${VAR}`) and the
 * SHIPARR_DOCKER_CONFIG auths resolve into RepoConfig.registries (the file wins per host), bad entries are errors
 * naming the file and key, a Docker config with credential helpers is warned about once, and the credentials are
 * masked once loaded.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadSettings } from '../../../src/config/settings.ts';
import { configLoader } from '../../../src/daemon/config.ts';
import { maskSecrets } from '../../../src/lib/redact.ts';
import { registerTestSecrets } from '../../helpers/secret-sweep.ts';

const FILE_PASS = 'file-reg-pass-8c1d2e3f';
const CFG_PASS = 'cfg-reg-pass-4a5b6c7d';
registerTestSecrets('credentials config test', [FILE_PASS, CFG_PASS]);

const root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-regcfg-'));
after(() => rm(root, { recursive: true, force: true }));

async function setup(projectYaml: string, dockerConfig?: object) {
  const dir = await mkdtemp(path.join(root, 'case-'));
  await mkdir(path.join(dir, 'config'));
  await writeFile(path.join(dir, 'config', 'p.yaml'), projectYaml);
  const env: NodeJS.ProcessEnv = {
    SHIPARR_CONFIG_PATH: path.join(dir, 'config'),
    SHIPARR_DATA_PATH: path.join(dir, 'data'),
    REG_PASS: FILE_PASS,
  };
  if (dockerConfig) {
    await writeFile(path.join(dir, 'docker.json'), JSON.stringify(dockerConfig));
    env['SHIPARR_DOCKER_CONFIG'] = path.join(dir, 'docker.json');
  }
  const warnings: string[] = [];
  const load = configLoader(loadSettings(env), env, undefined, {
    warn: (_o: object, m: string) => warnings.push(m),
  } as never);
  return { load, warnings };
}

const repo = `repositories:
  app:
    url: https://git.example.com/o/app.git
`;

test('project-file registries over SHIPARR_DOCKER_CONFIG auths, masked once loaded', async () => {
  const { load, warnings } = await setup(
    `project: p
registries:
  Registry.Example.com:5000:
    username: deployer
    password: \${REG_PASS}
    insecure: true
  index.docker.io:
    username: hubber
    password: hub-pass-1234567
${repo}`,
    {
      auths: {
        'registry.example.com:5000': { username: 'other', password: 'other-pass-99' },
        'ghcr.io': { auth: Buffer.from(`ghuser:${CFG_PASS}`).toString('base64') },
      },
      credHelpers: { 'gcr.io': 'gcloud' },
    },
  );
  const r = await load();
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.projects[0]!.repositories[0]!.registries, {
    'registry.example.com:5000': { username: 'deployer', password: FILE_PASS, insecure: true },
    'docker.io': { username: 'hubber', password: 'hub-pass-1234567' },
    'ghcr.io': { username: 'ghuser', password: CFG_PASS },
  });
  assert.equal(maskSecrets(`x ${FILE_PASS} ${CFG_PASS} hub-pass-1234567 y`), 'x *** *** *** y');
  await load();
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /SHIPARR_DOCKER_CONFIG: .*docker\.json: credsStore\/credHelpers are not supported/);
});

test('bad registries entries are errors naming the file and the key', async () => {
  const { load } = await setup(`project: p
registries:
  "bad host/x":
    username: u
    password: p
  ok.example.com:
    username: u
${repo}`);
  const r = await load();
  assert.equal(r.projects.length, 0);
  const text = r.errors.map((e) => `${path.basename(e.file)}: ${e.path}: ${e.message}`).join('\n');
  assert.match(text, /p\.yaml: registries: invalid name "bad host\/x": must be a registry host\[:port\]/);
  assert.match(text, /p\.yaml: registries\["ok\.example\.com"\]\.password: is required/);
});

test('an unreadable SHIPARR_DOCKER_CONFIG is warned about and ignored', async () => {
  const { load, warnings } = await setup(`project: p\n${repo}`);
  const dir = await mkdtemp(path.join(root, 'case-'));
  const env: NodeJS.ProcessEnv = {
    SHIPARR_CONFIG_PATH: path.join(dir, 'config'),
    SHIPARR_DATA_PATH: path.join(dir, 'data'),
    SHIPARR_DOCKER_CONFIG: path.join(dir, 'nope.json'),
  };
  await mkdir(env['SHIPARR_CONFIG_PATH']!);
  await writeFile(path.join(dir, 'config', 'p.yaml'), `project: p\n${repo}`);
  const w: string[] = [];
  const r = await configLoader(loadSettings(env), env, undefined, {
    warn: (_o: object, m: string) => w.push(m),
  } as never)();
  assert.deepEqual(r.errors, []);
  assert.equal(r.projects[0]!.repositories[0]!.registries, undefined);
  assert.match(w.join('\n'), /nope\.json: cannot read the Docker config \(ENOENT\); its credentials are not used/);
  assert.equal((await load()).projects.length, 1);
  assert.deepEqual(warnings, []);
});
