/**
 * @module The git server down for several poll intervals: the daemon does not crash, checks back off (the attempt
 * counter grows), exactly ONE failure notification goes out (identical failures are de-duplicated) and one recovery
 * notification when the server is back — counted on a real local HTTP server used as a generic webhook target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGitServer } from '../helpers/git-server.ts';
import {
  cleanupProject,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { checksCompleted, startTestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { projectYaml, startHookSink, tempDirs } from './helpers.ts';

const KEY = 'outage/web';

test(
  'git server down: no crash, backoff, one failure notification, one recovery notification',
  { timeout: 180_000 },
  async (t) => {
    if (!(await requireDocker(t))) return;
    const image = await ensureBusyboxImage();
    const git = await startGitServer();
    t.after(() => git.close());
    const sink = await startHookSink(t);
    const dirs = await tempDirs(t, 'outage');
    const project = uniqueProjectName('outage');
    cleanupProject(t, project);
    await git.createRepo('web', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'v1' }) });
    const daemon = await startTestDaemon({
      dirs,
      projects: {
        'outage.yaml': projectYaml('outage', {
          web: {
            url: git.repoUrl('web'),
            composeProject: project,
            checkInterval: 1,
            extra: [
              'healthcheck:',
              '  timeout: 30',
              'notifications:',
              `  success: ["${sink.url}"]`,
              `  failure: ["${sink.url}"]`,
            ],
          },
        }),
      },
    });
    t.after(() => daemon.close());
    // Plain-text generic webhook: the first line is the title.
    const titles = () => sink.received.map((r) => r.body.split('\n')[0] ?? '');

    await until(
      () => daemon.store.listDeployments(KEY, { limit: 5 }).items.find((d) => d.status === 'success'),
      'the boot deploy',
      90_000,
    );
    await until(() => sink.received.length >= 1, 'the success notification', 15_000);
    assert.equal(sink.received.length, 1);
    assert.match(titles()[0] ?? '', /deployed/);

    git.setUnavailable(503);
    const attempts: number[] = [];
    let lost = false;
    try {
      // Several failed polls (1 s interval; backoff 1, 2, 4, 4 … s): watch the attempt counter grow to 4, i.e. three
      // identical failures after the first, and the first failure's notification arrive.
      await until(
        () => {
          const s = daemon.supervisor.get(KEY);
          if (!s) {
            lost = true;
            return true;
          }
          if (attempts.at(-1) !== s.attempt) attempts.push(s.attempt);
          return s.attempt >= 4 && titles().some((x) => /failed/.test(x));
        },
        'four failed checks and a failure notification',
        60_000,
        20,
      );
      assert.equal(lost, false, 'the repository is still supervised');
      const st = daemon.supervisor.get(KEY);
      assert.equal(st?.lastError?.stage, 'checking');
      assert.equal(st?.lastError?.code, 'GIT_UNREACHABLE');
      assert.notEqual(st?.state, 'failed');
    } finally {
      git.setUnavailable(null);
    }
    assert.ok(Math.max(...attempts) >= 4, `attempt grew: ${attempts.join(',')}`);
    for (let i = 1; i < attempts.length; i++)
      assert.ok(
        (attempts[i] ?? 0) > (attempts[i - 1] ?? 0),
        `attempts only grow during the outage: ${attempts.join(',')}`,
      );
    const failures = titles().filter((x) => /failed/.test(x));
    assert.equal(failures.length, 1, `exactly one failure notification: ${titles().join(' | ')}`);
    assert.match(failures[0] ?? '', /checking/);

    await until(() => daemon.supervisor.get(KEY)?.attempt === 0, 'recovery', 30_000);
    await until(() => sink.received.length >= 3, 'the recovery notification', 15_000);
    // Nothing more is sent by the polls that follow the recovery.
    await checksCompleted(daemon.supervisor, KEY, 2);
    const all = titles();
    assert.equal(all.length, 3, all.join(' | '));
    assert.match(all[2] ?? '', /recovered/);
    assert.equal(daemon.supervisor.get(KEY)?.lastError, null);
    assert.equal(
      daemon.store.listDeployments(KEY, { limit: 50 }).items.length,
      1,
      'the outage created no deployment rows',
    );
  },
);
