/**
 * @module End to end with two Docker engines: the shared engine and a second dockerd in its own network namespace
 * (test/helpers/extra-engine.ts). One daemon watches five repositories: on the default engine, on the second engine
 * by unix socket, over tcp:// with TLS (certificates made by the test), over TLS with a wrong CA, and through a Docker
 * CLI context. Each deploys where it should and nowhere else; stopping the second engine backs off only its
 * repositories while the default engine keeps deploying; /api/health and /metrics name the engines.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../src/lib/exec.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import { docker, ensureBusyboxImage, MARKER_LABEL, uniqueProjectName, webServiceCompose } from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { extraEngineGone, requireExtraEngine, startExtraEngine, type ExtraEngine } from '../helpers/extra-engine.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';

interface Health {
  status: string;
  engines?: { host: string; ok: boolean; version: string | null; error?: string; repositories: number }[];
}

const REPOS = ['local', 'remote', 'tls', 'badca', 'ctx'] as const;
type Repo = (typeof REPOS)[number];

describe('remote Docker engines end to end', { concurrency: false }, () => {
  let git: GitServer | undefined;
  let engine: ExtraEngine | undefined;
  let daemon: TestDaemon | undefined;
  let tmp = '';
  let ready = false;
  let setupError: unknown;
  let savedDockerConfig: string | undefined;
  const projects = {} as Record<Repo, string>;
  const shas: Record<string, string> = {};

  const rows = (repo: Repo) => daemon!.store.listDeployments(`eng/${repo}`, { limit: 100 }).items;
  /** `marker state` of a compose project's containers on an engine (`-H` args, or none for the default one). */
  const markers = async (repo: Repo, host: string[]) =>
    (
      await docker([
        ...host,
        'ps',
        '-a',
        '--filter',
        `label=com.docker.compose.project=${projects[repo]}`,
        '--format',
        `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
      ])
    ).stdout.trim();
  const health = async (): Promise<Health> => (await (await fetch(`${daemon!.url}/api/health`)).json()) as Health;

  before(async () => {
    try {
      git = await startGitServer();
      const image = await ensureBusyboxImage();
      engine = await startExtraEngine();
      tmp = await mkdtemp(path.join(os.tmpdir(), 'eng-e2e-'));
      registerTestSecrets('extra engine client key', [await readFile(engine.tls.key, 'utf8')]);
      // A Docker CLI context naming the second engine, in a private DOCKER_CONFIG the daemon reads.
      const dockerConfig = path.join(tmp, 'docker-config');
      // The CLI plugins (compose) of the usual config directory stay visible.
      const plugins = path.join(process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker'), 'cli-plugins');
      await mkdir(dockerConfig, { recursive: true });
      if (existsSync(plugins)) await symlink(plugins, path.join(dockerConfig, 'cli-plugins'));
      const ctx = await exec('docker', ['context', 'create', 'second-engine', '--docker', `host=${engine.unixHost}`], {
        timeoutMs: 30_000,
        env: { DOCKER_CONFIG: dockerConfig },
      });
      assert.equal(ctx.code, 0, ctx.output);
      savedDockerConfig = process.env.DOCKER_CONFIG;
      process.env.DOCKER_CONFIG = dockerConfig;

      for (const r of REPOS) {
        projects[r] = uniqueProjectName(`eng-${r}`);
        let compose = webServiceCompose({ image, healthy: true, marker: `${r}-v1` });
        // The remote repository's container prints a line the container logs API must return.
        if (r === 'remote')
          compose = compose.replace('&& exec httpd', () => '&& echo \\"log line of $$MARKER\\" && exec httpd');
        // A relative bind mount: on a remote engine it names the remote host's filesystem (a warning in the log).
        if (r === 'tls')
          compose = compose.replace('    init: true\n', '    init: true\n    volumes:\n      - ./site:/site\n');
        shas[`${r}1`] = await git.createRepo(r, { 'compose.yaml': compose });
      }
      const configDir = path.join(tmp, 'config');
      const tlsRel = (f: string) => path.relative(configDir, f);
      const repo = (r: Repo, extra: string[]) =>
        [
          `  ${r}:`,
          `    url: ${git!.repoUrl(r)}`,
          '    check_interval: 1',
          `    compose_project: ${projects[r]}`,
          '    pull: never',
          '    healthcheck:',
          '      timeout: 30',
          '    timeouts:',
          '      apply: 60',
          ...extra.map((l) => `    ${l}`),
        ].join('\n');
      const yaml = [
        'project: eng',
        'repositories:',
        repo('local', []),
        repo('remote', [`docker_host: ${engine.unixHost}`]),
        repo('tls', [
          `docker_host: ${engine.tcpHost}`,
          'docker_tls:',
          `  ca: ${tlsRel(engine.tls.ca)}`,
          `  cert: ${tlsRel(engine.tls.cert)}`,
          `  key: ${tlsRel(engine.tls.key)}`,
        ]),
        repo('badca', [
          `docker_host: ${engine.tcpHost}`,
          'docker_tls:',
          `  ca: ${tlsRel(engine.tls.otherCa)}`,
          `  cert: ${tlsRel(engine.tls.cert)}`,
          `  key: ${tlsRel(engine.tls.key)}`,
        ]),
        repo('ctx', ['docker_context: second-engine']),
        '',
      ].join('\n');
      // Certificate paths are relative: they resolve against the project file's folder.
      daemon = await startTestDaemon({
        projects: { 'eng.yaml': yaml },
        // Five repositories deploy at boot: let them run at once.
        env: { SHIPARR_MAX_CONCURRENT_DEPLOYS: '6' },
        dirs: { configDir, dataDir: path.join(tmp, 'data') },
      });
      ready = true;
    } catch (err) {
      setupError = err;
    }
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = savedDockerConfig;
    for (const r of REPOS) {
      if (!projects[r]) continue;
      const ids = (await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${projects[r]}`])).stdout;
      for (const id of ids.split('\n').filter(Boolean)) await docker(['rm', '-f', '-v', id]);
      await docker(['network', 'rm', `${projects[r]}_default`]);
    }
    await engine?.close();
    if (engine) assert.ok(extraEngineGone(engine), 'the extra engine left files behind');
    await git?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const go = async (t: TestContext): Promise<boolean> => {
    if (!(await requireExtraEngine(t))) return false;
    if (!ready) throw setupError instanceof Error ? setupError : new Error(String(setupError));
    return true;
  };
  const onExtra = () => ['-H', engine!.unixHost];
  const succeeded = (r: Repo, sha: string, timeoutMs = 120_000) =>
    until(() => rows(r).find((d) => d.status === 'success' && d.commit === sha), `${r} to deploy ${sha}`, timeoutMs);

  test('docker_host (unix socket), tcp:// with TLS and a context deploy to the second engine and not the first', async (t) => {
    if (!(await go(t))) return;
    for (const r of ['local', 'remote', 'tls', 'ctx'] as const) await succeeded(r, shas[`${r}1`]!);
    assert.equal(await markers('local', []), 'local-v1 running');
    assert.equal(await markers('local', onExtra()), '', 'the default-engine repository is not on the second engine');
    for (const r of ['remote', 'tls', 'ctx'] as const) {
      assert.equal(await markers(r, onExtra()), `${r}-v1 running`, `${r} runs on the second engine`);
      assert.equal(await markers(r, []), '', `${r} is not on the shared engine`);
    }
    const tlsLog = daemon!.store.getDeploymentLogs(rows('tls').find((d) => d.status === 'success')!.id) ?? '';
    assert.ok(
      tlsLog.includes(
        `applying: warning: engine ${engine!.tcpHost}: compose.yaml: service web bind-mounts ./site, a path on the remote engine's host`,
      ),
      tlsLog,
    );
    const remoteLog = daemon!.store.getDeploymentLogs(rows('remote').find((d) => d.status === 'success')!.id) ?? '';
    assert.doesNotMatch(remoteLog, /warning: engine/, 'a unix socket engine is on this host: no warning');
  });

  test('GET /containers/:id/logs reads a container on the second engine (not on the first)', async (t) => {
    if (!(await go(t))) return;
    await succeeded('remote', shas.remote1!);
    const ids = await docker([
      ...onExtra(),
      'ps',
      '-q',
      '--no-trunc',
      '--filter',
      `label=com.docker.compose.project=${projects.remote}`,
    ]);
    const id = ids.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/, ids.output);
    assert.notEqual((await docker(['inspect', id])).code, 0, 'the container is not on the shared engine');
    const text = await until(async () => {
      const r = await fetch(`${daemon!.url}/containers/${id}/logs?tail=20`);
      assert.equal(r.status, 200);
      const body = await r.text();
      return /log line of remote-v1/.test(body) ? body : null;
    }, 'the remote container log line');
    assert.match(text, /^log line of remote-v1$/m);
    // A container of no managed project on the second engine reads as not found.
    const stray = await docker([...onExtra(), 'create', '--label', 'x=1', 'shiparr-test/busybox:latest', 'true']);
    assert.equal(stray.code, 0, stray.output);
    try {
      assert.equal((await fetch(`${daemon!.url}/containers/${stray.stdout.trim()}/logs`)).status, 404);
    } finally {
      await docker([...onExtra(), 'rm', '-f', stray.stdout.trim()]);
    }
  });

  test('a wrong CA fails loudly: the deployment is failed, naming the engine (no key material)', async (t) => {
    if (!(await go(t))) return;
    const d = await until(() => rows('badca').find((x) => x.status === 'failed'), 'badca to fail', 120_000);
    assert.match(d.error ?? '', /certificate|x509|tls/i);
    assert.ok((d.error ?? '').includes(engine!.tcpHost.replace('tcp://', '')), d.error ?? '');
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.doesNotMatch(logs, /BEGIN (EC |RSA )?PRIVATE KEY/);
    assert.equal(await markers('badca', onExtra()), '');
    assert.equal(await markers('badca', []), '');
  });

  test('/api/health and /metrics list each engine with its version and repositories', async (t) => {
    if (!(await go(t))) return;
    const h = await until(async () => {
      const x = await health();
      // On a loaded host one ping may time out: wait for a round where the second engine and the good TLS one answer.
      const up = (host: string) => x.engines?.some((e) => e.host === host && e.ok);
      return up(engine!.unixHost) && up(engine!.tcpHost) ? x : null;
    }, 'the second engine in /api/health');
    const byHost = new Map(h.engines!.map((e) => [e.host, e]));
    assert.equal(byHost.get('default')?.ok, true);
    assert.equal(byHost.get('default')?.repositories, 1);
    assert.equal(byHost.get(engine!.unixHost)?.repositories, 1);
    assert.match(byHost.get(engine!.unixHost)?.version ?? '', /^\d+\.\d+/);
    // tls and badca: the same endpoint with different CAs, two engines; the wrong CA one is down and says why.
    const tcp = h.engines!.filter((e) => e.host === engine!.tcpHost);
    assert.deepEqual(tcp.map((e) => e.ok).sort(), [false, true]);
    assert.match(tcp.find((e) => !e.ok)?.error ?? '', /certificate|x509|tls/i);
    assert.equal(h.status, 'degraded', 'an engine with a wrong CA is down');
    // A scrape pings again: on a loaded host the good TLS engine may miss one ping; wait for a round it answers.
    const metrics = await until(async () => {
      const text = await (await fetch(`${daemon!.url}/metrics`)).text();
      return new RegExp(
        `^shiparr_engine_up\\{engine="${engine!.tcpHost.replace(/[/.]/g, '\\$&')}#[0-9a-f]{8}"\\} 1$`,
        'm',
      ).test(text)
        ? text
        : null;
    }, 'the TLS engine up in /metrics');
    assert.match(metrics, new RegExp(`shiparr_engine_up\\{engine="${engine!.unixHost.replace(/[/.]/g, '\\$&')}"\\} 1`));
    assert.match(metrics, /shiparr_engine_info\{engine="default",version="\d+\.\d+[^"]*"\} 1/);
    // tls and badca share the endpoint: two engine labels, the endpoint plus a short hash of each one's settings.
    const tcpLabels = [...metrics.matchAll(/^shiparr_engine_up\{engine="([^"]+)"\} (\d)$/gm)]
      .filter((m) => m[1]?.startsWith(`${engine!.tcpHost}#`))
      .map((m) => m[2]);
    assert.deepEqual(tcpLabels.sort(), ['0', '1'], metrics);
    assert.doesNotMatch(metrics, /\.pem|BEGIN/);
  });

  test('the second engine down: only its repositories back off, the default engine deploys; recovery after', async (t) => {
    if (!(await go(t))) return;
    await engine!.stop();
    shas.remote2 = await git!.commit('remote', {
      'compose.yaml': webServiceCompose({ image: 'shiparr-test/busybox:latest', healthy: true, marker: 'remote-v2' }),
    });
    shas.local2 = await git!.commit('local', {
      'compose.yaml': webServiceCompose({ image: 'shiparr-test/busybox:latest', healthy: true, marker: 'local-v2' }),
    });
    const down = await until(
      () => rows('remote').find((d) => d.commit === shas.remote2 && d.status === 'failed'),
      'the remote deploy to fail while its engine is down',
      120_000,
    );
    assert.match(down.error ?? '', /DOCKER_UNREACHABLE|unreachable/i);
    assert.ok((down.error ?? '').includes(engine!.unixHost), down.error ?? '');
    await succeeded('local', shas.local2);
    assert.equal(await markers('local', []), 'local-v2 running');
    const h = await until(async () => {
      const x = await health();
      return x.engines?.find((e) => e.host === engine!.unixHost && !e.ok) ? x : null;
    }, 'the down engine in /api/health');
    assert.equal(h.status, 'degraded');
    assert.equal(h.engines!.find((e) => e.host === 'default')?.ok, true);
    const status = daemon!.supervisor.get('eng/remote');
    assert.equal(status?.pinnedCommit, null, 'an unreachable engine never pins the commit');

    await engine!.start();
    await succeeded('remote', shas.remote2!, 180_000);
    assert.match(await markers('remote', onExtra()), /^remote-v2 running$/m);
    await until(
      async () => (await health()).engines?.every((e) => e.ok || e.error?.match(/certificate|x509|tls/i)),
      'every engine but the wrong-CA one up again',
    );
  });
});
