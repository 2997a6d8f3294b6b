/**
 * @module Deployment reasons, one test per variant: what each trigger and cause opens a row with, how the commit range
 * refines it after the sync, the config keys a reload changed, and that every summary is one masked line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedConfigKeys, describeCommits, openingReason, refineReason } from '../../../src/machines/reasons.ts';
import { registerSecretValues } from '../../../src/lib/redact.ts';
import { repoConfig } from '../../helpers/repo-config.ts';

const A = '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';
const B = '5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80';

test('commits: a poll opens with the new head, and the sync adds count and subjects', () => {
  const opened = openingReason({ trigger: 'poll', commit: B, previousCommit: A });
  assert.deepEqual(opened, {
    kind: 'commits',
    summary: 'new head 5d6e7f8 (was 1a2b3c4)',
    from: A,
    to: B,
    count: null,
    subjects: [],
  });
  const refined = refineReason(opened, A, B, {
    count: 4,
    subjects: ['Fix login', 'Bump db', 'Add cache', 'Tidy', 'Older'],
  });
  assert.deepEqual(refined, {
    kind: 'commits',
    summary: '4 new commits 1a2b3c4..5d6e7f8: Fix login; Bump db; Add cache; …',
    from: A,
    to: B,
    count: 4,
    subjects: ['Fix login', 'Bump db', 'Add cache', 'Tidy', 'Older'],
  });
  const two = refineReason(opened, A, B, { count: 2, subjects: ['Fix login', 'Bump db'] });
  assert.equal(two.summary, '2 new commits 1a2b3c4..5d6e7f8: Fix login; Bump db');
  const shallow = refineReason(opened, A, B, { count: null, subjects: ['Fix login'] });
  assert.equal(shallow.kind === 'commits' && shallow.count, null);
  assert.equal(shallow.summary, 'new commits 1a2b3c4..5d6e7f8 (count unknown: shallow history): Fix login; …');
  const first = refineReason(openingReason({ trigger: 'poll', commit: B, previousCommit: null }), null, B, {
    count: null,
    subjects: ['Initial'],
  });
  assert.equal(first.summary, 'first deployment of 5d6e7f8: Initial');
});

test('config: a reload lists the changed keys by their project-file names; a poll with an unmoved head says config', () => {
  const prev = repoConfig('home', 'media');
  const next = { ...prev, composeFiles: ['compose.yaml', 'extra.yaml'], checkInterval: 30, configHash: 'other' };
  const keys = changedConfigKeys(prev, next);
  assert.deepEqual(keys, ['check_interval', 'compose_files']);
  const r = openingReason({ trigger: 'config', commit: A, previousCommit: A, cause: { configKeys: keys } });
  assert.deepEqual(r, { kind: 'config', summary: 'config changed: check_interval, compose_files', keys });
  assert.deepEqual(openingReason({ trigger: 'config', commit: A, previousCommit: A }), {
    kind: 'config',
    summary: 'config changed',
    keys: [],
  });
  const unmoved = openingReason({ trigger: 'poll', commit: A, previousCommit: A });
  assert.equal(unmoved.kind, 'config');
  assert.equal(unmoved.summary, 'config differs from the last successful deployment of 1a2b3c4');
  // New commits arriving with the config change are appended once known.
  const withCommits = refineReason(r, A, B, { count: 1, subjects: ['Fix login'] });
  assert.equal(
    withCommits.summary,
    'config changed: check_interval, compose_files; 1 new commit 1a2b3c4..5d6e7f8: Fix login',
  );
});

test('forced: by whom and via api or cli; a check asked through the API is about its commits', () => {
  assert.deepEqual(openingReason({ trigger: 'api', triggeredBy: 'token:ci', commit: null, previousCommit: A }), {
    kind: 'forced',
    summary: 'forced deploy by token:ci via api',
    by: 'token:ci',
    via: 'api',
  });
  assert.deepEqual(openingReason({ trigger: 'cli', triggeredBy: 'cli:alice', commit: null, previousCommit: A }), {
    kind: 'forced',
    summary: 'forced deploy by cli:alice via cli',
    by: 'cli:alice',
    via: 'cli',
  });
  assert.equal(
    openingReason({ trigger: 'api', commit: null, previousCommit: null }).summary,
    'forced deploy by an anonymous request via api',
  );
  const resumed = openingReason({ trigger: 'api', forced: false, commit: B, previousCommit: A });
  assert.equal(resumed.kind, 'commits');
  // A forced redeploy of the same commit adds nothing; new commits are appended.
  const forced = openingReason({ trigger: 'api', triggeredBy: 'user:admin', commit: null, previousCommit: A });
  assert.equal(refineReason(forced, A, A, { count: 0, subjects: [] }), forced);
  assert.equal(
    refineReason(forced, A, B, { count: 2, subjects: ['Fix login', 'Bump db'] }).summary,
    'forced deploy by user:admin via api; 2 new commits 1a2b3c4..5d6e7f8: Fix login; Bump db',
  );
});

test('webhook: provider and delivery id, the commit range appended once known', () => {
  const r = openingReason({
    trigger: 'webhook',
    triggeredBy: 'webhook:github',
    commit: B,
    previousCommit: A,
    cause: { webhook: { provider: 'github', deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958' } },
  });
  assert.deepEqual(r, {
    kind: 'webhook',
    summary: 'webhook from github (delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958)',
    provider: 'github',
    deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
  });
  const refined = refineReason(r, A, B, { count: 2, subjects: ['Fix login', 'Bump db'] });
  assert.equal(refined.kind, 'webhook');
  assert.equal(
    refined.summary,
    'webhook from github (delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958); 2 new commits 1a2b3c4..5d6e7f8: Fix login; Bump db',
  );
  // Without a cause (e.g. a restarted actor), the provider comes from who asked; no delivery id.
  assert.deepEqual(openingReason({ trigger: 'webhook', triggeredBy: 'webhook:gitea', commit: B, previousCommit: A }), {
    kind: 'webhook',
    summary: 'webhook from gitea',
    provider: 'gitea',
    deliveryId: null,
  });
});

test('rollback: from/to, manual, by whom and the deployment named; the range never changes it', () => {
  const r = openingReason({
    trigger: 'rollback',
    triggeredBy: 'token:ops',
    commit: A,
    previousCommit: B,
    cause: { rollbackOf: 12 },
  });
  assert.deepEqual(r, {
    kind: 'rollback',
    summary: 'manual rollback 5d6e7f8 → 1a2b3c4 (deployment #12) by token:ops',
    from: B,
    to: A,
    automatic: false,
    by: 'token:ops',
    deploymentId: 12,
  });
  assert.equal(refineReason(r, B, A, { count: 0, subjects: [] }), r);
  assert.equal(
    openingReason({ trigger: 'rollback', commit: A, previousCommit: B }).summary,
    'manual rollback 5d6e7f8 → 1a2b3c4',
  );
});

test('recovery, boot and retry', () => {
  assert.deepEqual(
    openingReason({ trigger: 'boot', commit: A, previousCommit: A, cause: { interruptedDeploymentId: 41 } }),
    {
      kind: 'recovery',
      summary: 'recovery: redeploy after deployment #41 was interrupted',
      interruptedDeploymentId: 41,
    },
  );
  assert.deepEqual(openingReason({ trigger: 'boot', commit: B, previousCommit: A }), {
    kind: 'boot',
    summary: 'check at start found 5d6e7f8 (was 1a2b3c4)',
  });
  assert.equal(
    openingReason({ trigger: 'boot', commit: B, previousCommit: null }).summary,
    'first check after start: 5d6e7f8 not deployed yet',
  );
  assert.deepEqual(openingReason({ trigger: 'retry', commit: B, previousCommit: A, cause: { attempt: 2 } }), {
    kind: 'retry',
    summary: 'retry after 2 transient failures',
    attempt: 2,
  });
  assert.equal(openingReason({ trigger: 'self-update', commit: B, previousCommit: A }).kind, 'self-update');
});

test('summaries are one masked line: secrets, newlines and long subjects never get through', () => {
  registerSecretValues('reasons-test', ['s3cr3t-value-xyz']);
  try {
    const r = refineReason(openingReason({ trigger: 'poll', commit: B, previousCommit: A }), A, B, {
      count: 1,
      subjects: [`leak s3cr3t-value-xyz\nsecond line ${'x'.repeat(200)}`],
    });
    assert.doesNotMatch(JSON.stringify(r), /s3cr3t-value-xyz/);
    assert.doesNotMatch(r.summary, /\n/);
    assert.ok(r.kind === 'commits' && [...r.subjects[0]!].length <= 72);
    const by = openingReason({
      trigger: 'api',
      triggeredBy: 'token:s3cr3t-value-xyz',
      commit: null,
      previousCommit: A,
    });
    assert.doesNotMatch(JSON.stringify(by), /s3cr3t-value-xyz/);
  } finally {
    registerSecretValues('reasons-test', []);
  }
  assert.equal(describeCommits(A, A, null), 'redeploy of 1a2b3c4 (no new commits)');
});
