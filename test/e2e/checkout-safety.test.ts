/**
 * @module End to end: a checkout conflict through the real daemon, git smart HTTP and the Docker engine. Docker
 * creates a missing bind source (`./config.yml`) as a directory inside the checkout; a later commit adds the real
 * file. The deploy fails at pulling naming the path, the previous containers keep running, and the data the stack
 * keeps in its checkout (an untracked database, an ignored .env, the directory itself) is untouched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
  composeDown,
  removeProjectContainers,
  docker,
  MARKER_LABEL,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';

const KEY = 'safety/stack';
const DB = 'SQLite format 3 rows the app wrote';
const ENV = 'APP_PASSWORD=local-only\n';

describe('checkout conflict end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let image = '';
  let project = '';
  let tmp = '';
  let checkout = '';
  const shas: Record<string, string> = {};

  const rows = () => daemon!.store.listDeployments(KEY, { limit: 100 }).items;
  const markers = async () =>
    (
      await docker([
        'ps',
        '--filter',
        `label=com.docker.compose.project=${project}`,
        '--format',
        `{{.Label "${MARKER_LABEL}"}} {{.State}}`,
      ])
    ).stdout.trim();

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-safety');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-e2e-safety-'));
    checkout = path.join(tmp, 'stacks', 'stack');
    shas.v1 = await git.createRepo('stack', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }),
      '.gitignore': '.env\n',
    });
    daemon = await startTestDaemon({
      projects: {
        'safety.yaml': `project: safety
repositories:
  stack:
    url: ${git.repoUrl('stack')}
    branch: main
    local_path: ${checkout}
    check_interval: 1
    compose_project: ${project}
    pull: never
    healthcheck:
      timeout: 20
    timeouts:
      apply: 90
`,
      },
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

  test('the conflict is a failed deployment naming the path; v1 keeps running; no file is lost', async (t) => {
    if (!(await requireDocker(t))) return;
    const first = await until(() => rows().find((r) => r.status === 'success'), 'the boot deployment', 90_000);
    assert.equal(first.commit, shas.v1);
    assert.equal(await markers(), 'v1 running');

    // What a running stack leaves in its checkout: Docker's directory for a missing bind source, a database, a .env.
    await mkdir(path.join(checkout, 'config.yml'));
    await mkdir(path.join(checkout, 'data'));
    await writeFile(path.join(checkout, 'data', 'db.sqlite'), DB);
    await writeFile(path.join(checkout, '.env'), ENV);

    shas.v2 = await git.commit('stack', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v2' }),
      'config.yml': 'real: true\n',
    });
    const failed = await until(
      () => rows().find((r) => r.commit === shas.v2 && r.status !== 'running' && r.status !== 'pending'),
      'the v2 deployment to finish',
      90_000,
    );
    assert.equal(failed.status, 'failed');
    assert.match(
      failed.error ?? '',
      /^pulling: GIT_CHECKOUT_CONFLICT: .*config\.yml \(a directory where the commit has a file\)/,
    );
    assert.match(daemon!.store.getDeploymentLogs(failed.id) ?? '', /config\.yml/);

    // The previous deployment is left running, and nothing in the checkout was deleted or replaced.
    assert.equal(await markers(), 'v1 running');
    assert.equal(daemon!.supervisor.get(KEY)?.lastDeployedCommit, shas.v1);
    assert.equal(await readFile(path.join(checkout, 'data', 'db.sqlite'), 'utf8'), DB);
    assert.equal(await readFile(path.join(checkout, '.env'), 'utf8'), ENV);
    assert.match(await readFile(path.join(checkout, 'compose.yaml'), 'utf8'), /v1/);
    assert.equal((await readdir(path.join(checkout, 'config.yml'))).length, 0);
  });
});
