/** Message formatting: what each event says, truncation and masking of errors, durations. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatMessage, summarizeError } from '../../../src/notify/index.ts';

const base = { project: 'home', repository: 'web', commit: 'a1b2c3d4e5f60718293a', trigger: 'webhook' };

test('success names project, repository, short commit, trigger and duration', () => {
  const m = formatMessage({ ...base, event: 'success', durationMs: 65_000, url: 'http://shiparr.lan/r/home/web' });
  assert.equal(m.title, '✅ home/web: deployed a1b2c3d');
  assert.equal(
    m.body,
    [
      'Project: home',
      'Repository: web',
      'Commit: a1b2c3d',
      'Trigger: webhook',
      'Duration: 1m 05s',
      'Details: http://shiparr.lan/r/home/web',
    ].join('\n'),
  );
});

test('failure names the failing stage and the error summary', () => {
  const m = formatMessage({
    ...base,
    event: 'failure',
    stage: 'applying',
    error: 'COMPOSE_UP_FAILED:\n  exit 1',
    durationMs: 850,
  });
  assert.equal(m.title, '❌ home/web: deploy failed (applying)');
  assert.equal(
    m.body,
    [
      'Project: home',
      'Repository: web',
      'Commit: a1b2c3d',
      'Trigger: webhook',
      'Failed stage: applying',
      'Error: COMPOSE_UP_FAILED: exit 1',
      'Duration: 850 ms',
    ].join('\n'),
  );
});

test('rolled_back names the rollback target; recovered the failure count; test is generic', () => {
  const rb = formatMessage({
    ...base,
    event: 'rolled_back',
    stage: 'verifying',
    error: 'unhealthy',
    rolledBackTo: 'ffeeddccbbaa99887766',
  });
  assert.equal(rb.title, '↩️ home/web: deploy failed, rolled back to ffeeddc');
  assert.match(rb.body, /^Rolled back to: ffeeddc$/m);
  assert.match(rb.body, /^Failed stage: verifying$/m);
  const rec = formatMessage({ ...base, event: 'recovered', failuresBefore: 3 });
  assert.equal(rec.title, '✅ home/web: recovered, deployed a1b2c3d');
  assert.match(rec.body, /^Previous failures: 3$/m);
  const t = formatMessage({ ...base, event: 'test' });
  assert.match(t.title, /test notification/);
  assert.doesNotMatch(t.body, /Commit/);
  assert.match(formatMessage({ ...base, commit: null, event: 'failure' }).body, /^Commit: unknown$/m);
});

test('errors are truncated to ~500 characters and credentials in them are masked', () => {
  const long = `fatal: could not read from https://user:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/a/b ${'x'.repeat(2000)}`;
  const s = summarizeError(long);
  assert.equal([...s].length, 500);
  assert.ok(s.endsWith('…'));
  assert.equal(s.includes('ghp_abcdefghijklmnopqrstuvwxyz0123'), false);
  assert.match(s, /https:\/\/\*\*\*@github\.com/);
});

test('durations', () => {
  assert.equal(formatDuration(999), '999 ms');
  assert.equal(formatDuration(12_345), '12.3 s');
  assert.equal(formatDuration(3_725_000), '1h 02m');
  assert.equal(formatDuration(-1), 'unknown');
});

test('the reason goes in a Why line after the trigger, one masked line capped like errors', () => {
  const m = formatMessage({ ...base, event: 'success', reason: '2 new commits a1b2c3d..e4f5a6b: Fix login; Bump db' });
  assert.match(m.body, /^Trigger: webhook\nWhy: 2 new commits a1b2c3d\.\.e4f5a6b: Fix login; Bump db$/m);
  const failed = formatMessage({
    ...base,
    event: 'failure',
    reason: `forced deploy by https://user:hunter2secret@git.example/x\nsecond ${'y'.repeat(900)}`,
  });
  const why = /^Why: (.*)$/m.exec(failed.body)?.[1] ?? '';
  assert.doesNotMatch(why, /hunter2secret/);
  assert.ok([...why].length <= 500);
  assert.doesNotMatch(formatMessage({ ...base, event: 'success' }).body, /^Why:/m, 'no reason, no line');
});
