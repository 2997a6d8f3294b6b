/**
 * @module End to end: a repository with a SOPS/age `.env.enc` deploys with the decrypted value inside the container,
 * the plaintext is removed afterwards, and a file the key cannot open fails at `decrypting` with the previous
 * deployment still running.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  composeDown,
  removeProjectContainers,
  docker,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { generateIdentity, sopsEncryptDotenv } from '../unit/secrets/helpers/sops-encrypt.ts';

const KEY = 'vault/app';

function composeYaml(image: string, marker: string): string {
  return `services:
  app:
    image: ${JSON.stringify(image)}
    pull_policy: never
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    environment:
      GREETING: \${GREETING}
      API_TOKEN: \${API_TOKEN}
      MARKER: ${marker}
    labels:
      shiparr.test.marker: ${marker}
`;
}

describe('SOPS secrets end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let tmp = '';
  let project = '';
  let image = '';
  const me = generateIdentity();
  const stranger = generateIdentity();

  const rows = () => daemon!.store.listDeployments(KEY, { limit: 100 }).items;
  const containerEnv = async () => {
    const id = (await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`])).stdout.trim();
    return (await docker(['exec', id, 'env'])).stdout;
  };

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-sops');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-sops-'));
    const keyFile = path.join(tmp, 'age.key');
    await writeFile(keyFile, `# created: test\n# public key: ${me.recipient}\n${me.identity}\n`, { mode: 0o600 });
    const enc = sopsEncryptDotenv(
      [
        { comment: ' app secrets' },
        { key: 'GREETING', value: 'hello from sops' },
        { key: 'API_TOKEN', value: 's3cr3t-value-42' },
      ],
      { recipients: [me.recipient] },
    );
    registerTestSecrets('decrypted values of the e2e SOPS test', ['s3cr3t-value-42', me.identity, stranger.identity]);
    await git.createRepo('app', { 'deploy/compose.yaml': composeYaml(image, 'one'), 'deploy/.env.enc': enc.text });
    daemon = await startTestDaemon({
      projects: {
        'vault.yaml': `project: vault
repositories:
  app:
    url: ${git.repoUrl('app')}
    path: deploy
    env_file: .env.enc
    check_interval: 1
    compose_project: ${project}
    pull: never
    healthcheck: { timeout: 20 }
`,
      },
      env: { SOPS_AGE_KEY_FILE: keyFile },
    });
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    if (project) {
      await composeDown(project);
      await removeProjectContainers(project);
    }
    await git?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the decrypted variable is visible in the container and the plaintext file is gone', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await until(
      () => rows().find((r) => r.status !== 'pending' && r.status !== 'running'),
      'first deployment',
      60_000,
    );
    assert.equal(d.status, 'success', d.error ?? '');
    const env = await containerEnv();
    assert.match(env, /^GREETING=hello from sops$/m);
    assert.match(env, /^API_TOKEN=s3cr3t-value-42$/m);
    const plaintext = path.join(daemon!.dataDir, 'deployments', 'vault', 'app', 'deploy', '.env');
    await until(
      async () =>
        access(plaintext).then(
          () => false,
          () => true,
        ),
      'plaintext removed',
      5_000,
    );
    const logs = daemon!.store.getDeploymentLogs(d.id) ?? '';
    assert.match(logs, /decrypting: 1 file/);
    assert.doesNotMatch(logs + JSON.stringify(d), /s3cr3t-value-42|hello from sops/);
  });

  test('a file the key cannot open fails at decrypting; the previous deployment keeps running', async (t) => {
    if (!(await requireDocker(t))) return;
    const enc = sopsEncryptDotenv(
      [
        { key: 'GREETING', value: 'nope' },
        { key: 'API_TOKEN', value: 'other' },
      ],
      { recipients: [stranger.recipient] },
    );
    const sha = await git.commit('app', {
      'deploy/compose.yaml': composeYaml(image, 'two'),
      'deploy/.env.enc': enc.text,
    });
    const d = await until(
      () => rows().find((r) => r.commit === sha && r.status !== 'pending' && r.status !== 'running'),
      'failed deployment',
      60_000,
    );
    assert.equal(d.status, 'failed');
    assert.equal(d.stage, 'decrypting');
    assert.match(d.error ?? '', /SOPS_NO_MATCHING_KEY/);
    assert.ok((d.error ?? '').includes(stranger.recipient), 'the error names the file recipients');
    assert.ok(
      !(d.error ?? '').includes(me.identity) && !(d.error ?? '').includes('AGE-SECRET-KEY'),
      'no key material in errors',
    );
    const env = await containerEnv();
    assert.match(env, /^MARKER=one$/m);
    assert.match(env, /^GREETING=hello from sops$/m);
    assert.equal(daemon!.supervisor.get(KEY)?.pinnedCommit, sha);
  });
});
