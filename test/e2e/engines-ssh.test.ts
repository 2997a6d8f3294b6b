/**
 * @module End to end over ssh://: an `sshd` started by the test on 127.0.0.1 (its own config, host key and
 * authorized_keys in a temp dir) in front of the local engine. A repository with `docker_host: ssh://root@127.0.0.1:PORT`
 * and `docker_ssh: {key, known_hosts}` deploys through it (compose through the system ssh, verification through
 * ssh2); a repository whose known_hosts lists another host key is refused with a host key error, for both; a
 * repository whose key sshd does not accept fails its deployment naming the stage and the ssh host (no user, no key).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec } from '../../src/lib/exec.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  docker,
  ensureBusyboxImage,
  freePort,
  MARKER_LABEL,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';

const SSHD = '/usr/sbin/sshd';

/** Why this test cannot run here, or null. */
async function sshMissing(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'sshd must log in as a user who can reach the Docker socket (root)';
  if (!existsSync(SSHD)) return `${SSHD} is not installed (openssh-server)`;
  for (const tool of ['ssh', 'ssh-keygen']) {
    if ((await exec('sh', ['-c', `command -v ${tool}`], { timeoutMs: 10_000 })).code !== 0) return `${tool} is missing`;
  }
  return null;
}

async function requireSsh(t: TestContext): Promise<boolean> {
  if (!(await requireDocker(t))) return false;
  const why = await sshMissing();
  if (!why) return true;
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1') throw new Error(`sshd test required: ${why}`);
  t.skip(`no sshd: ${why}`);
  return false;
}

describe('ssh:// engine end to end', { concurrency: false }, () => {
  let git: GitServer | undefined;
  let daemon: TestDaemon | undefined;
  let sshd: ChildProcess | undefined;
  let tmp = '';
  let port = 0;
  let ready = false;
  let setupError: unknown;
  const projects: Record<string, string> = {};
  const shas: Record<string, string> = {};
  const rows = (r: string) => daemon!.store.listDeployments(`sshe/${r}`, { limit: 50 }).items;

  before(async () => {
    if (await sshMissing()) return;
    try {
      git = await startGitServer();
      const image = await ensureBusyboxImage();
      tmp = await mkdtemp(path.join(os.tmpdir(), 'eng-ssh-'));
      const p = (n: string) => path.join(tmp, n);
      for (const k of ['host_key', 'other_host_key', 'client_key', 'unauthorised_key']) {
        const r = await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', p(k)], {
          timeoutMs: 30_000,
        });
        assert.equal(r.code, 0, r.output);
      }
      registerTestSecrets('ssh client keys', [
        await readFile(p('client_key'), 'utf8'),
        await readFile(p('unauthorised_key'), 'utf8'),
      ]);
      port = await freePort();
      await writeFile(p('authorized_keys'), await readFile(p('client_key.pub')), { mode: 0o600 });
      await writeFile(p('known_hosts'), `[127.0.0.1]:${port} ${await readFile(p('host_key.pub'), 'utf8')}`);
      await writeFile(p('wrong_known_hosts'), `[127.0.0.1]:${port} ${await readFile(p('other_host_key.pub'), 'utf8')}`);
      await writeFile(
        p('sshd_config'),
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${p('host_key')}`,
          `AuthorizedKeysFile ${p('authorized_keys')}`,
          `PidFile ${p('sshd.pid')}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'MaxStartups 100',
          'MaxSessions 100',
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
      // Debian's sshd needs its privilege separation directory.
      await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
      sshd = spawn(SSHD, ['-D', '-e', '-f', p('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let sshdErr = '';
      sshd.stderr?.on('data', (d: Buffer) => (sshdErr += d.toString()));
      await until(
        async () =>
          (
            await exec(
              'ssh',
              [
                '-F',
                '/dev/null',
                '-o',
                'BatchMode=yes',
                '-o',
                'StrictHostKeyChecking=yes',
                '-o',
                `UserKnownHostsFile=${p('known_hosts')}`,
                '-i',
                p('client_key'),
                '-p',
                String(port),
                'root@127.0.0.1',
                'docker version --format {{.Server.Version}}',
              ],
              { timeoutMs: 15_000 },
            )
          ).code === 0,
        `sshd on 127.0.0.1:${port} to let the client run docker (${sshdErr})`,
        30_000,
        250,
      );

      const repo = (r: string, kh: string, key = 'client_key') => {
        projects[r] = uniqueProjectName(`eng-ssh-${r}`);
        return [
          `  ${r}:`,
          `    url: ${git!.repoUrl(r)}`,
          '    check_interval: 1',
          `    compose_project: ${projects[r]}`,
          '    pull: never',
          `    docker_host: ssh://root@127.0.0.1:${port}`,
          '    docker_ssh:',
          `      key: ${p(key)}`,
          `      known_hosts: ${p(kh)}`,
          '    healthcheck:',
          '      timeout: 60',
          '    timeouts:',
          '      apply: 90',
        ].join('\n');
      };
      for (const r of ['good', 'wrong', 'badkey']) {
        shas[r] = await git.createRepo(r, {
          'compose.yaml': webServiceCompose({ image, healthy: true, marker: `ssh-${r}` }),
        });
      }
      daemon = await startTestDaemon({
        projects: {
          'sshe.yaml': [
            'project: sshe',
            'repositories:',
            repo('good', 'known_hosts'),
            repo('wrong', 'wrong_known_hosts'),
            repo('badkey', 'known_hosts', 'unauthorised_key'),
            '',
          ].join('\n'),
        },
        env: { SHIPARR_MAX_CONCURRENT_DEPLOYS: '4' },
      });
      ready = true;
    } catch (err) {
      setupError = err;
    }
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    sshd?.kill('SIGTERM');
    for (const project of Object.values(projects)) {
      const ids = (await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).stdout;
      for (const id of ids.split('\n').filter(Boolean)) await docker(['rm', '-f', '-v', id]);
      await docker(['network', 'rm', `${project}_default`]);
    }
    await git?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const go = async (t: TestContext): Promise<boolean> => {
    if (!(await requireSsh(t))) return false;
    if (!ready) throw setupError instanceof Error ? setupError : new Error(String(setupError));
    return true;
  };

  test('a repository on ssh://root@127.0.0.1:PORT deploys through sshd to the engine behind it', async (t) => {
    if (!(await go(t))) return;
    const d = await until(
      () => rows('good').find((x) => x.status === 'success' && x.commit === shas.good),
      'the ssh deploy',
      150_000,
    );
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(logs, /verifying: 1 container/);
    assert.doesNotMatch(logs, /PRIVATE KEY/);
    const ps = await docker([
      'ps',
      '--filter',
      `label=com.docker.compose.project=${projects.good}`,
      '--format',
      `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
    ]);
    assert.equal(ps.stdout.trim(), 'ssh-good running');
    // Over a loaded host an ssh ping may time out once: wait for a round where the good engine answers.
    const engines = await until(async () => {
      const h = (await (await fetch(`${daemon!.url}/api/health`)).json()) as {
        engines: { host: string; ok: boolean; version: string | null; error?: string }[];
      };
      const list = h.engines.filter((e) => e.host === `ssh://127.0.0.1:${port}`);
      return list.some((e) => e.ok) ? list : null;
    }, 'the good ssh engine up in /api/health');
    assert.equal(engines.length, 3, 'three engines (two known_hosts files, two keys), the user name masked');
    assert.ok(
      engines.some((e) => e.ok && e.version),
      JSON.stringify(engines),
    );
  });

  test('a known_hosts file listing another host key refuses the connection with a clear error', async (t) => {
    if (!(await go(t))) return;
    const d = await until(() => rows('wrong').find((x) => x.status === 'failed'), 'the refused ssh deploy', 120_000);
    assert.match(d.error ?? '', /host key verification failed/i);
    // Over a loaded host the good engine's ping may time out once: wait for a round where it answers.
    const ssh = await until(async () => {
      const h = (await (await fetch(`${daemon!.url}/api/health`)).json()) as {
        engines: { host: string; ok: boolean; error?: string }[];
      };
      const list = h.engines.filter((e) => e.host === `ssh://127.0.0.1:${port}`);
      return list.some((e) => e.ok) ? list : null;
    }, 'the good ssh engine up in /api/health');
    assert.deepEqual(ssh.map((e) => e.ok).sort(), [false, false, true], JSON.stringify(ssh));
    assert.ok(
      ssh.some((e) => /verification failed|host denied/i.test(e.error ?? '')),
      JSON.stringify(ssh),
    );
    const ps = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${projects.wrong}`]);
    assert.equal(ps.stdout.trim(), '');
  });

  test('a key sshd does not accept fails the deployment, naming the stage and the ssh host', async (t) => {
    if (!(await go(t))) return;
    const d = await until(() => rows('badkey').find((x) => x.status === 'failed'), 'the refused ssh deploy', 120_000);
    assert.equal(d.status, 'failed');
    assert.equal(d.stage, 'applying');
    // What ssh said (the end of a long docker CLI line), the stage, and the engine — without the user name.
    assert.match(
      d.error ?? '',
      /^applying: DOCKER_UNREACHABLE: compose up: Docker engine unreachable over ssh: 127\.0\.0\.1: Permission denied \(publickey\)/,
    );
    assert.ok((d.error ?? '').endsWith(`(engine ssh://127.0.0.1:${port})`), d.error ?? '');
    assert.doesNotMatch(d.error ?? '', /root@|PRIVATE KEY/);
    const ps = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${projects.badkey}`]);
    assert.equal(ps.stdout.trim(), '');
  });
});
