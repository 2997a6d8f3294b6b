/** @module The deploy machine's notice → the notifier's target and event; stored notify state read back. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RepoConfig } from '../../../src/config/schema.ts';
import { deployEventOf, isNotifyState, notifyTargetOf, type DeployNotice } from '../../../src/notify/index.ts';

const repo: RepoConfig = {
  key: 'home/web',
  project: 'home',
  name: 'web',
  url: 'https://x.org/web.git',
  branch: 'main',
  localPath: '/data/home/web',
  path: '.',
  checkInterval: 300,
  composeFiles: [],
  composeProject: 'home-web',
  pull: 'missing',
  build: false,
  removeOrphans: true,
  healthcheck: { timeout: 120, retries: 5, interval: 5 },
  rollback: true,
  decrypt: [],
  keepDecrypted: false,
  enabled: true,
  suspended: false,
  shallow: true,
  timeouts: { git: 120, apply: 600, decrypt: 60, notify: 7 },
  notifications: { success: ['ntfy://a/ok'], failure: ['ntfy://a/ko'] },
  globalNotifications: { success: ['ntfy://g/ok'], failure: [] },
  notifyRepeatInterval: 60,
  configHash: 'h',
};

const run = { trigger: 'webhook', startedAt: 1_000, previousCommit: 'prev' };

test('the target carries the repository and global URLs, the repeat interval and the send timeout in ms', () => {
  assert.deepEqual(notifyTargetOf(repo), {
    repoKey: 'home/web',
    success: ['ntfy://a/ok'],
    failure: ['ntfy://a/ko'],
    global: { success: ['ntfy://g/ok'], failure: [] },
    repeatIntervalMs: 60_000,
    timeoutMs: 7_000,
  });
});

test('notice kinds map to success, rolled_back or failure, with stage, error, duration and rollback target', () => {
  const notice = (kind: DeployNotice['kind'], error: DeployNotice['error'] = null): DeployNotice => ({
    kind,
    run,
    error,
    commit: 'c1',
  });
  assert.equal(deployEventOf(repo, notice('success'), 4_000).event, 'success');
  assert.equal(deployEventOf(repo, notice('check_recovered'), 4_000).event, 'success');
  assert.equal(deployEventOf(repo, notice('check_failed'), 4_000).event, 'failure');
  const failed = deployEventOf(
    repo,
    notice('failed', { stage: 'applying', code: 'COMPOSE_FAILED', message: 'boom' }),
    4_000,
  );
  assert.deepEqual(failed, {
    event: 'failure',
    project: 'home',
    repository: 'web',
    commit: 'c1',
    trigger: 'webhook',
    stage: 'applying',
    error: 'COMPOSE_FAILED: boom',
    durationMs: 3_000,
    rolledBackTo: undefined,
  });
  const rolledBack = deployEventOf(repo, notice('rolled_back', { stage: 'verifying', code: 'X', message: 'y' }), 4_000);
  assert.equal(rolledBack.event, 'rolled_back');
  assert.equal(rolledBack.rolledBackTo, 'prev');
});

test('a notice without a run (a failed check) is a poll without duration', () => {
  const ev = deployEventOf(repo, {
    kind: 'check_failed',
    run: null,
    error: { stage: 'checking', code: 'GIT', message: 'down' },
    commit: null,
  });
  assert.equal(ev.trigger, 'poll');
  assert.equal(ev.durationMs, undefined);
  assert.equal(ev.stage, 'checking');
});

test('stored notify state is accepted only in its persisted shape', () => {
  assert.equal(isNotifyState({ failures: 2, lastFailureKey: 'c|applying', lastFailureSentAt: 5 }), true);
  assert.equal(isNotifyState({ failures: 0, lastFailureKey: null, lastFailureSentAt: null }), true);
  for (const bad of [null, undefined, 'x', {}, { failures: '1', lastFailureKey: null, lastFailureSentAt: null }])
    assert.equal(isNotifyState(bad), false);
});

test("the run's reason summary becomes the event's reason", () => {
  const withReason = deployEventOf(
    repo,
    {
      kind: 'success',
      run: { ...run, reason: { summary: 'webhook from github (delivery d-1)' } },
      error: null,
      commit: 'c1',
    },
    4_000,
  );
  assert.equal(withReason.reason, 'webhook from github (delivery d-1)');
  assert.equal(deployEventOf(repo, { kind: 'success', run, error: null, commit: 'c1' }, 4_000).reason, undefined);
});
