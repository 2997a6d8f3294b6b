/**
 * @module Engine settings in project files: bad schemes, missing certificate/key files, unknown contexts and
 * misplaced options are config errors with file, key path and reason; relative paths resolve against the project
 * file's folder; a project-level engine is the default of its repositories. Also the engine module's own output:
 * CLI environment, private TLS copies (0600), masked labels, the ssh wrapper and known_hosts checks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadProjectFile } from '../../../src/config/load.ts';
import { maskEngineHost, prepareEngine, remoteComposeWarnings } from '../../../src/compose/engine.ts';
import { composeEnv } from '../../../src/compose/cli.ts';
import { exec } from '../../../src/lib/exec.ts';

let root = '';
let seq = 0;
let savedDockerConfig: string | undefined;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'eng-config-'));
  savedDockerConfig = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = path.join(root, 'docker-config');
});
after(async () => {
  if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
  else process.env.DOCKER_CONFIG = savedDockerConfig;
  await rm(root, { recursive: true, force: true });
});

/** Writes a project file (and `files` next to it) in a fresh folder and loads it. */
async function load(yaml: string, files: Record<string, string> = {}) {
  const dir = path.join(root, `case-${++seq}`);
  await mkdir(path.join(dir, 'projects', 'certs'), { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, 'projects', name), text);
  const file = path.join(dir, 'projects', 'p.yaml');
  await writeFile(file, yaml);
  const r = await loadProjectFile(file, { env: {}, dataPath: path.join(dir, 'data') });
  return { ...r, dir: path.join(dir, 'projects'), msgs: r.errors.map((e) => `${e.path}: ${e.message}`) };
}

const repo = (extra: string, head = '') =>
  `project: p\n${head}repositories:\n  web:\n    url: https://git.example/web.git\n${extra
    .split('\n')
    .filter(Boolean)
    .map((l) => `    ${l}`)
    .join('\n')}\n`;

test('an unsupported scheme is refused with its key path', async () => {
  const r = await load(repo('docker_host: ftp://engine:21'));
  assert.equal(r.errors[0]?.file, path.join(r.dir, 'p.yaml'));
  assert.deepEqual(r.msgs, [
    'repositories.web.docker_host: has unsupported scheme "ftp:" (expected unix://, tcp://, http(s):// or ssh://)',
  ]);
  const bad = await load(repo('docker_host: not a url'));
  assert.match(bad.msgs[0] ?? '', /^repositories\.web\.docker_host: is not a URL/);
});

test('a missing certificate file names the key and the resolved path; relative paths resolve against the file', async () => {
  const r = await load(
    repo(
      'docker_host: tcp://10.0.0.5:2376\ndocker_tls:\n  ca: certs/ca.pem\n  cert: certs/cert.pem\n  key: certs/nope.pem',
    ),
    { 'certs/ca.pem': 'x', 'certs/cert.pem': 'x' },
  );
  assert.deepEqual(r.msgs, [
    `repositories.web.docker_tls.key: file ${path.join(r.dir, 'certs', 'nope.pem')} not found`,
  ]);
  const ok = await load(
    repo(
      'docker_host: tcp://10.0.0.5:2376\ndocker_tls:\n  ca: certs/ca.pem\n  cert: certs/cert.pem\n  key: certs/key.pem',
    ),
    { 'certs/ca.pem': 'x', 'certs/cert.pem': 'x', 'certs/key.pem': 'x' },
  );
  assert.deepEqual(ok.msgs, []);
  assert.deepEqual(ok.project?.repositories[0]?.engine, {
    host: 'tcp://10.0.0.5:2376',
    tls: {
      verify: true,
      ca: path.join(ok.dir, 'certs', 'ca.pem'),
      cert: path.join(ok.dir, 'certs', 'cert.pem'),
      key: path.join(ok.dir, 'certs', 'key.pem'),
    },
  });
});

test('TLS and ssh options must match the scheme; verify needs a CA; host and context exclude each other', async () => {
  const r = await load(repo('docker_host: ssh://me@box\ndocker_tls:\n  verify: true'));
  assert.deepEqual(r.msgs.sort(), [
    'repositories.web.docker_tls.ca: is required when verify is true',
    'repositories.web.docker_tls: applies only to tcp:// engines',
  ]);
  const s = await load(repo('docker_host: tcp://box:2375\ndocker_ssh:\n  known_hosts: kh'), { kh: '' });
  assert.deepEqual(s.msgs, ['repositories.web.docker_ssh: applies only to ssh:// engines']);
  const both = await load(repo('docker_host: unix:///x.sock\ndocker_context: c'));
  assert.deepEqual(both.msgs, ['repositories.web.docker_context: set either docker_host or docker_context, not both']);
});

test('an unknown context is refused; a context in the store is accepted', async () => {
  const r = await load(repo('docker_context: nowhere'));
  assert.deepEqual(r.msgs, [
    `repositories.web.docker_context: docker context "nowhere" not found in ${process.env.DOCKER_CONFIG}`,
  ]);
  const created = await exec('docker', ['context', 'create', 'somewhere', '--docker', 'host=unix:///nowhere.sock'], {
    timeoutMs: 30_000,
  });
  if (created.code !== 0) {
    assert.match(created.error ?? created.output, /ENOENT|not found|unknown command/i, 'the docker CLI is missing');
    return;
  }
  const ok = await load(repo('docker_context: somewhere'));
  assert.deepEqual(ok.msgs, []);
  assert.deepEqual(ok.project?.repositories[0]?.engine, { context: 'somewhere' });
  const e = prepareEngine({ context: 'somewhere' }, { stateDir: path.join(root, 'state-ctx') });
  assert.equal(e.env.DOCKER_HOST, 'unix:///nowhere.sock');
  assert.equal((e.dockerode as { socketPath?: string }).socketPath, '/nowhere.sock');
});

test('a project-level engine is the default; a repository naming its own engine overrides it entirely', async () => {
  const yaml =
    'project: p\ndocker_host: tcp://shared:2375\nrepositories:\n' +
    '  a:\n    url: https://git.example/a.git\n' +
    '  b:\n    url: https://git.example/b.git\n    docker_host: unix:///var/run/other.sock\n';
  const r = await load(yaml);
  assert.deepEqual(r.msgs, []);
  const [a, b] = r.project!.repositories;
  assert.deepEqual(a?.engine, { host: 'tcp://shared:2375' });
  assert.equal(a?.dockerHost, 'tcp://shared:2375');
  assert.deepEqual(b?.engine, { host: 'unix:///var/run/other.sock' });
  assert.notEqual(
    a?.configHash,
    (await load(yaml.replace('tcp://shared:2375', 'tcp://other:2375'))).project!.repositories[0]?.configHash,
  );
  const bad = await load(
    'project: p\ndocker_host: gopher://x\nrepositories:\n  a:\n    url: https://git.example/a.git\n',
  );
  assert.deepEqual(bad.msgs, [
    'docker_host: has unsupported scheme "gopher:" (expected unix://, tcp://, http(s):// or ssh://)',
  ]);
});

test('prepareEngine: TLS files copied 0600 into a private dir; the CLI environment replaces the daemon engine', async () => {
  const dir = path.join(root, 'tls-src');
  await mkdir(dir);
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(path.join(dir, f), `pem ${f}`, { mode: 0o644 });
  const stateDir = path.join(root, 'state');
  const e = prepareEngine(
    {
      host: 'tcp://10.0.0.5:2376',
      tls: { verify: true, ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` },
    },
    { stateDir },
  );
  const certDir = e.env.DOCKER_CERT_PATH!;
  assert.ok(certDir.startsWith(stateDir));
  assert.equal((await stat(certDir)).mode & 0o777, 0o700);
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) {
    assert.equal((await stat(path.join(certDir, f))).mode & 0o777, 0o600);
    assert.equal(await readFile(path.join(certDir, f), 'utf8'), `pem ${f}`);
  }
  assert.equal(e.env.DOCKER_TLS_VERIFY, '1');
  assert.equal(e.label, 'tcp://10.0.0.5:2376');
  const env = composeEnv(
    { PATH: '/usr/bin', DOCKER_HOST: 'unix:///daemon.sock', DOCKER_CERT_PATH: '/daemon/certs', DOCKER_TLS_VERIFY: '1' },
    e.env,
  );
  assert.deepEqual(env, {
    PATH: '/usr/bin',
    DOCKER_HOST: 'tcp://10.0.0.5:2376',
    DOCKER_CERT_PATH: certDir,
    DOCKER_TLS_VERIFY: '1',
  });
  const plain = prepareEngine({ host: 'tcp://10.0.0.5:2375' }, { stateDir });
  assert.deepEqual(composeEnv({ DOCKER_CERT_PATH: '/daemon/certs', DOCKER_TLS_VERIFY: '1' }, plain.env), {
    DOCKER_HOST: 'tcp://10.0.0.5:2375',
  });
  assert.throws(
    () => prepareEngine({ host: 'tcp://h:2376', tls: { verify: true, ca: '/nonexistent/ca.pem' } }, { stateDir }),
    { code: 'DOCKER_HOST_INVALID', message: 'engine tcp://h:2376: TLS ca file /nonexistent/ca.pem not found' },
  );
});

test('engine labels carry no credentials', () => {
  assert.equal(maskEngineHost('ssh://deploy:hunter2secret@box.example:2222'), 'ssh://box.example:2222');
  assert.equal(maskEngineHost('ssh://deploy@box.example'), 'ssh://box.example');
  assert.equal(maskEngineHost('unix:///var/run/docker.sock'), 'unix:///var/run/docker.sock');
  assert.equal(maskEngineHost('tcp://u:pw@10.0.0.5:2376'), 'tcp://10.0.0.5:2376');
});

test('prepareEngine ssh: a wrapper first on PATH runs ssh with strict host key checking and the copied key', async () => {
  const dir = path.join(root, 'ssh-src');
  await mkdir(dir);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFile(path.join(dir, 'id'), pem, { mode: 0o644 });
  await writeFile(path.join(dir, 'kh'), '[box.example]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake\n');
  const e = prepareEngine(
    { host: 'ssh://deploy@box.example:2222', ssh: { key: path.join(dir, 'id'), knownHosts: path.join(dir, 'kh') } },
    { stateDir: path.join(root, 'state-ssh'), env: { PATH: '/usr/bin:/bin' } },
  );
  assert.equal(e.label, 'ssh://box.example:2222');
  const bin = (e.env.PATH ?? '').split(':')[0]!;
  const wrapper = await readFile(path.join(bin, 'ssh'), 'utf8');
  const config = await readFile(wrapper.match(/-F '([^']+)'/)![1]!, 'utf8');
  assert.match(config, /StrictHostKeyChecking yes/);
  assert.match(config, /BatchMode yes/);
  assert.match(config, /IdentitiesOnly yes/);
  const key = config.match(/IdentityFile "([^"]+)"/)![1]!;
  assert.equal((await stat(key)).mode & 0o777, 0o600);
  assert.ok(!JSON.stringify(e.env).includes('PRIVATE KEY'));
});

test('remoteComposeWarnings names relative bind mounts and file-based configs/secrets, nothing else', async () => {
  const dir = path.join(root, 'compose-warn');
  await mkdir(dir);
  await writeFile(
    path.join(dir, 'compose.yaml'),
    [
      'services:',
      '  web:',
      '    image: x',
      '    volumes:',
      '      - ./data:/data',
      '      - named:/named',
      '      - /srv/abs:/abs',
      '      - type: bind',
      '        source: ./shared',
      '        target: /shared',
      'volumes:',
      '  named: {}',
      'configs:',
      '  site:',
      '    file: ./site.conf',
      '',
    ].join('\n'),
  );
  assert.deepEqual(await remoteComposeWarnings(dir, []), [
    "compose.yaml: service web bind-mounts ./data, a path on the remote engine's host (the checkout is not there)",
    "compose.yaml: service web bind-mounts ./shared, a path on the remote engine's host (the checkout is not there)",
    "compose.yaml: configs site is read from file ./site.conf on the remote engine's host, not from the checkout",
  ]);
  assert.deepEqual(await remoteComposeWarnings(dir, ['missing.yaml']), []);
  assert.equal(prepareEngine({ host: 'unix:///x.sock' }).remote, false);
  assert.equal(prepareEngine({ host: 'tcp://10.0.0.5:2375' }).remote, true);
});
