/**
 * @module The container image end to end: builds the base images (cached) and the real Dockerfile, then runs the
 * image the way docker-compose.yml does (docker socket + group_add, config/secrets mounts) and checks health, the
 * non-root user, tini, the Compose plugin, a clean SIGTERM stop, and a real deploy of a SOPS-encrypted project
 * from a git server on 127.0.0.1 (the container shares the host network to reach it).
 *
 * Slow (a fresh machine: debootstrap + npm + native build, a few minutes), so the image is built once, in the first
 * test. Bases: SHIPARR_BASE_IMAGE / SHIPARR_BUILD_BASE_IMAGE select existing ones (e.g. node:20-bookworm-slim where
 * a registry is reachable); otherwise scripts/image/build-base.sh builds them from scratch into tags of this run
 * (never a base cached by an earlier run, so a missing step shows up here and not on a user's machine), with the
 * minimal PATH a non-login root shell has, and they are removed afterwards.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../../src/lib/exec.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  compose,
  docker,
  ensureBusyboxImage,
  freePort,
  removeProjectContainers,
  requireDocker,
  uniqueProjectName,
} from '../helpers/docker.ts';
import { until } from '../helpers/wait.ts';
import { generateIdentity, sopsEncryptDotenv } from '../unit/secrets/helpers/sops-encrypt.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOCKET = '/var/run/docker.sock';
const MB = 1024 * 1024;
/**
 * Size limit from the issue (MiB, as `docker image inspect` counts bytes): the stripped Node binary, docker-cli and
 * the compose plugin alone are ~173 MB, so the rest (Debian's libc, the ssh client, node_modules, dist) has ~47 MB.
 */
const SIZE_LIMIT = 220 * MB;

/** Last lines of a long output, for assertion messages. */
const tail = (s: string, n = 40): string => s.trimEnd().split('\n').slice(-n).join('\n');

describe('container image', { concurrency: false }, () => {
  const runId = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tag = `shiparr-test/shiparr:${runId}`;
  /** Base tags of this run only (build-base.sh adds `-build` for the build stage's base). */
  const baseTag = `shiparr-test/base:${runId}`;
  const baseTags: string[] = [];
  let built = false;
  /** Dangling images the classic builder left behind for our build stage (cache layers); removed in after(). */
  let leftovers: string[] = [];
  const containers: string[] = [];
  const projects: string[] = [];
  const dirs: string[] = [];
  let git: GitServer | undefined;

  after(async () => {
    for (const id of containers) await docker(['rm', '-f', '-v', id]);
    for (const p of projects) await removeProjectContainers(p);
    if (built) await docker(['rmi', '-f', tag]);
    for (const b of baseTags) await docker(['rmi', '-f', b]);
    if (leftovers.length) await docker(['rmi', ...leftovers]);
    await git?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const tmpDir = async (prefix: string): Promise<string> => {
    const d = await mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
  };

  /** `docker run -d` with the socket mounted and its group added, as docker-compose.yml does. */
  const run = async (args: string[]): Promise<string> => {
    const gid = (await stat(SOCKET)).gid;
    const r = await docker(['run', '-d', '--group-add', String(gid), '-v', `${SOCKET}:${SOCKET}`, ...args, tag], {
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, `docker run failed: ${r.output}`);
    const id = r.stdout.trim();
    containers.push(id);
    return id;
  };

  const inspect = async (id: string, format: string): Promise<string> =>
    (await docker(['inspect', '-f', format, id])).stdout.trim();

  const waitHealthy = async (id: string): Promise<void> => {
    await until(
      async () => {
        const s = await inspect(id, '{{.State.Status}} {{.State.Health.Status}}');
        if (s.startsWith('exited') || s.startsWith('dead')) {
          throw new Error(`container stopped: ${s}\n${tail((await docker(['logs', id])).output)}`);
        }
        return s === 'running healthy';
      },
      'container healthy',
      120_000,
      500,
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nlogs:\n${tail((await docker(['logs', id])).output)}`);
    });
  };

  // Its own budget: a debootstrap base plus the image on a fresh machine (scripts/test.sh runs test/image/ under a
  // longer file limit than the rest of the suite).
  test('the Dockerfile builds against the local base', { timeout: 30 * 60_000 }, async (t) => {
    if (!(await requireDocker(t))) return;
    const started = Date.now();
    const env = { ...process.env };
    if (!env['SHIPARR_BASE_IMAGE']) {
      for (const b of [baseTag, `${baseTag}-build`]) {
        assert.notEqual((await docker(['image', 'inspect', b])).code, 0, `${b} must not exist before this run`);
        baseTags.push(b);
      }
      // PATH without /usr/sbin, as in a non-login root shell: the script must find debootstrap and chroot itself.
      const base = await exec('bash', [path.join(ROOT, 'scripts/image/build-base.sh'), '--force'], {
        cwd: ROOT,
        timeoutMs: 600_000,
        env: { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin', SHIPARR_BASE_TAG: baseTag },
      });
      assert.equal(base.code, 0, `build-base.sh failed:\n${tail(base.output)}`);
      env['SHIPARR_BASE_TAG'] = baseTag;
      t.diagnostic(`base images ready in ${Math.round((Date.now() - started) / 1000)} s`);
    }
    const dangling = async (): Promise<string[]> =>
      (await docker(['images', '-q', '--no-trunc', '--filter', 'dangling=true'])).stdout.split('\n').filter(Boolean);
    const before = new Set(await dangling());
    const buildStart = Date.now();
    const b = await exec('bash', [path.join(ROOT, 'scripts/image/build.sh'), '-t', tag], {
      cwd: ROOT,
      timeoutMs: 900_000,
      env,
    });
    assert.equal(b.code, 0, `image build failed:\n${tail(b.output, 60)}`);
    built = true;
    leftovers = (await dangling()).filter((i) => !before.has(i));
    t.diagnostic(`image built in ${Math.round((Date.now() - buildStart) / 1000)} s`);

    const size = Number(await inspect(tag, '{{.Size}}'));
    assert.ok(size > 0);
    t.diagnostic(`image size: ${(size / MB).toFixed(1)} MB (limit ${SIZE_LIMIT / MB} MB)`);
    assert.ok(
      size <= SIZE_LIMIT,
      `image is ${(size / MB).toFixed(1)} MB, above the ${SIZE_LIMIT / MB} MB limit:\n${(await docker(['history', '--format', '{{.Size}}\t{{.CreatedBy}}', tag])).stdout}`,
    );

    const config = JSON.parse(await inspect(tag, '{{json .Config}}')) as {
      User: string;
      Env: string[];
      ExposedPorts: Record<string, unknown>;
      Entrypoint: string[];
      StopSignal: string;
      Healthcheck?: { Test: string[] };
      Labels: Record<string, string>;
    };
    assert.equal(config.User, 'shiparr:shiparr');
    assert.ok('8080/tcp' in config.ExposedPorts);
    assert.equal(config.StopSignal, 'SIGTERM');
    assert.equal(config.Entrypoint[0], '/usr/bin/tini');
    assert.match(config.Healthcheck?.Test.join(' ') ?? '', /\/api\/health/);
    for (const e of [
      'SHIPARR_HOST=0.0.0.0',
      'SHIPARR_CONFIG_PATH=/config',
      'SHIPARR_DATA_PATH=/data',
      'SOPS_AGE_KEY_FILE=/secrets/age.key',
      'HOME=/app',
    ]) {
      assert.ok(config.Env.includes(e), `ENV ${e}`);
    }
    assert.equal(config.Labels['org.opencontainers.image.title'], 'Shiparr');
    assert.match(config.Labels['org.opencontainers.image.version'] ?? '', /^\d+\.\d+\.\d+/);
  });

  test('runs healthy as uid 1000 under tini, reaches the engine through the socket, stops cleanly on SIGTERM', async (t) => {
    if (!(await requireDocker(t))) return;
    assert.ok(built, 'the image was not built');
    // The image listens on 0.0.0.0, which Shiparr refuses without authentication.
    const id = await run([
      '-p',
      '127.0.0.1::8080',
      '--health-interval',
      '1s',
      '-e',
      'SHIPARR_AUTH_MODE=basic',
      '-e',
      'SHIPARR_AUTH_PASSWORD=image-test-pw',
    ]);
    await waitHealthy(id);

    assert.equal((await docker(['exec', id, 'id', '-u'])).stdout.trim(), '1000');
    assert.equal(
      (await docker(['exec', id, 'sh', '-c', 'echo $HOME && test -w $HOME && echo writable'])).stdout.trim(),
      '/app\nwritable',
    );
    const pid1 = (await docker(['exec', id, 'cat', '/proc/1/cmdline'])).stdout.split('\0').filter(Boolean);
    assert.deepEqual(pid1.slice(0, 4), ['/usr/bin/tini', '--', 'node', '/app/dist/main.js']);

    const composeVersion = await docker(['exec', id, 'docker', 'compose', 'version']);
    assert.equal(composeVersion.code, 0, composeVersion.output);
    assert.match(composeVersion.stdout, /Docker Compose version v?2\./);
    // The socket is usable by the non-root user only thanks to --group-add (compose: group_add).
    const server = await docker(['exec', id, 'docker', 'version', '--format', '{{.Server.Version}}']);
    assert.equal(server.code, 0, `docker CLI inside the container cannot reach the engine: ${server.output}`);
    assert.ok(server.stdout.trim().length > 0);

    const hostPort = (await docker(['port', id, '8080/tcp'])).stdout.trim().split('\n')[0] ?? '';
    assert.match(hostPort, /^127\.0\.0\.1:\d+$/);
    const res = await fetch(`http://${hostPort}/api/health`);
    assert.equal(res.status, 200);
    const health = (await res.json()) as { status: string; db: { ok: boolean }; docker: { ok: boolean } };
    assert.equal(health.db.ok, true);
    assert.equal(health.docker.ok, true, 'the daemon reaches the engine through the mounted socket');
    assert.equal((await fetch(`http://${hostPort}/api/repositories`)).status, 401, 'the API needs credentials');
    const authed = await fetch(`http://${hostPort}/api/repositories`, {
      headers: { authorization: `Basic ${Buffer.from('admin:image-test-pw').toString('base64')}` },
    });
    assert.equal(authed.status, 200);

    const stop = await docker(['stop', '-t', '30', id], { timeoutMs: 60_000 });
    assert.equal(stop.code, 0, stop.output);
    assert.equal(await inspect(id, '{{.State.ExitCode}}'), '0', 'SIGTERM → graceful shutdown → exit 0');
    assert.match((await docker(['logs', id])).output, /"msg":"stopped"/);
  });

  test('deploys a git project with a SOPS .env.enc; the decrypted variable reaches the deployed container', async (t) => {
    if (!(await requireDocker(t))) return;
    assert.ok(built, 'the image was not built');
    const busybox = await ensureBusyboxImage();
    git = await startGitServer();
    const project = uniqueProjectName('img-sops');
    projects.push(project);

    const me = generateIdentity();
    const enc = sopsEncryptDotenv([{ key: 'GREETING', value: 'hello from the image' }], { recipients: [me.recipient] });
    const composeYaml = `services:
  app:
    image: ${JSON.stringify(busybox)}
    pull_policy: never
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    environment:
      GREETING: \${GREETING}
`;
    await git.createRepo('app', { 'deploy/compose.yaml': composeYaml, 'deploy/.env.enc': enc.text });

    const configDir = await tmpDir('shiparr-img-config-');
    await writeFile(
      path.join(configDir, 'image.yaml'),
      `project: image
repositories:
  app:
    url: ${git.repoUrl('app')}
    path: deploy
    env_file: .env.enc
    check_interval: 1
    compose_project: ${project}
    pull: never
    healthcheck: { timeout: 30 }
`,
    );
    await chmod(configDir, 0o755);
    const secretsDir = await tmpDir('shiparr-img-secrets-');
    const keyFile = path.join(secretsDir, 'age.key');
    // World-readable only because it is a throwaway identity made for this test: the container runs as uid 1000.
    await writeFile(keyFile, `# public key: ${me.recipient}\n${me.identity}\n`, { mode: 0o644 });
    await chmod(secretsDir, 0o755);

    const port = await freePort();
    const id = await run([
      '--network',
      'host',
      '-e',
      `SHIPARR_PORT=${port}`,
      '-e',
      'SHIPARR_HOST=127.0.0.1',
      '-v',
      `${configDir}:/config:ro`,
      '-v',
      `${keyFile}:/secrets/age.key:ro`,
    ]);
    await waitHealthy(id);

    type Row = { status: string; stage: string | null; error: string | null; commit: string };
    const deployment = await until(
      async () => {
        const r = await fetch(
          `http://127.0.0.1:${port}/api/repositories/${encodeURIComponent('image/app')}/deployments`,
        );
        if (r.status !== 200) return undefined;
        const body = (await r.json()) as { items: Row[] };
        return body.items.find((d) => !['pending', 'running'].includes(d.status));
      },
      'first deployment to finish',
      120_000,
      500,
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nlogs:\n${tail((await docker(['logs', id])).output)}`);
    });
    assert.equal(
      deployment.status,
      'success',
      `${deployment.stage ?? ''}: ${deployment.error ?? ''}\n${tail((await docker(['logs', id])).output)}`,
    );
    assert.equal(deployment.commit, git.head('app', 'main'));

    const deployed = (
      await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`])
    ).stdout.trim();
    assert.ok(deployed, 'a container of the deployed project runs on the host engine');
    assert.match((await docker(['exec', deployed, 'env'])).stdout, /^GREETING=hello from the image$/m);
    // The decrypted value never reaches Shiparr's own logs.
    assert.doesNotMatch((await docker(['logs', id])).output, /hello from the image/);
    // The checkout lives in the container's /data (HOME and data owned by uid 1000).
    const ls = await docker([
      'exec',
      id,
      'sh',
      '-c',
      'test -f /data/deployments/image/app/deploy/compose.yaml && stat -c %u /data/shiparr.db',
    ]);
    assert.equal(ls.stdout.trim(), '1000', ls.output);
  });

  test('docker-compose.yml is a valid Compose file with the documented mounts', async (t) => {
    if (!(await requireDocker(t))) return;
    const dir = await tmpDir('shiparr-img-compose-');
    await copyFile(path.join(ROOT, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
    await writeFile(path.join(dir, '.env'), 'DOCKER_GID=4242\nSHIPARR_PORT=18080\n');
    const r = await compose(dir, ['-f', 'docker-compose.yml', 'config', '--format', 'json']);
    assert.equal(r.code, 0, r.output);
    const cfg = JSON.parse(r.stdout) as {
      name: string;
      services: Record<
        string,
        {
          group_add?: string[];
          restart?: string;
          environment?: Record<string, string>;
          ports?: { published: string; target: number }[];
          volumes?: { source: string; target: string; read_only?: boolean }[];
        }
      >;
    };
    const svc = cfg.services['shiparr'];
    assert.ok(svc, 'service shiparr');
    assert.equal(cfg.name, 'shiparr');
    assert.deepEqual(svc.group_add, ['4242']);
    assert.equal(svc.restart, 'unless-stopped');
    assert.equal(svc.environment?.['SHIPARR_CONFIG_PATH'], '/config');
    assert.equal(svc.environment?.['SHIPARR_HOST'], '0.0.0.0');
    assert.equal(
      svc.environment?.['SHIPARR_AUTH_MODE'],
      'basic',
      'published port → Basic Auth unless .env says otherwise',
    );
    assert.equal(svc.environment?.['SOPS_AGE_KEY_FILE'], '/secrets/age.key');
    assert.equal(svc.ports?.[0]?.published, '18080');
    assert.equal(svc.ports?.[0]?.target, 8080);
    const targets = new Map((svc.volumes ?? []).map((v) => [v.target, v]));
    assert.ok(targets.has(SOCKET));
    assert.equal(targets.get('/config')?.read_only, true);
    assert.equal(targets.get('/secrets/age.key')?.read_only, true);
    assert.ok(targets.has('/data'));
    const deployments = [...targets.values()].find((v) => /deployments/.test(v.target));
    assert.ok(deployments, 'a deployments mount');
    assert.equal(deployments.source, deployments.target, 'deployments are mounted at the same path as on the host');
  });
});
