/**
 * @module The image watch keys of a repository: `image_updates` off by default (nothing in the resolved config),
 * notify/auto resolved with interval, policy and write_back, none of them in the config hash (changing them never
 * redeploys), and bad semver ranges or regexes as errors with file, key path and reason.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { repoLoader } from '../helpers/load-repo.ts';

const load = repoLoader('shiparr-imgwatch-cfg-');

test('image_updates defaults to off: nothing resolved; notify/auto resolve with their defaults and keep the config hash', async () => {
  const plain = await load('');
  assert.deepEqual(plain.errors, []);
  assert.equal(plain.repo && 'imageWatch' in plain.repo, false);
  const notify = await load('    image_updates: notify\n');
  assert.deepEqual(notify.repo?.imageWatch, { mode: 'notify', interval: 21600, policy: {}, writeBack: false });
  const auto = await load(
    [
      '    image_updates: auto',
      '    image_check_interval: 2',
      '    write_back: true',
      '    image_policy:',
      '      db: { semver: "^16" }',
      '      web: { tag_regex: "^v\\\\d+$" }',
      '',
    ].join('\n'),
  );
  assert.deepEqual(auto.errors, []);
  assert.deepEqual(auto.repo?.imageWatch, {
    mode: 'auto',
    interval: 2,
    policy: { db: { semver: '^16' }, web: { tagRegex: '^v\\d+$' } },
    writeBack: true,
  });
  // Watching images is not deploy-relevant: switching it on, off or re-timing it never redeploys.
  assert.equal(notify.repo?.configHash, plain.repo?.configHash);
  assert.equal(auto.repo?.configHash, plain.repo?.configHash);
});

test('bad image watch keys are errors with file, key path and reason', async () => {
  const bad = await load(
    [
      '    image_updates: sometimes',
      '    image_check_interval: -1',
      '    image_policy:',
      '      db: { semver: "not a range!" }',
      '      web: { tag_regex: "(unclosed" }',
      '      api: { channel: stable }',
      '',
    ].join('\n'),
  );
  assert.equal(bad.projects.length, 0);
  const by = new Map(bad.errors.map((e) => [e.path, e]));
  assert.ok(bad.errors.every((e) => e.file === bad.file));
  assert.match(by.get('repositories.app.image_updates')?.message ?? '', /off|notify|auto/);
  assert.match(by.get('repositories.app.image_check_interval')?.message ?? '', /positive/);
  assert.match(by.get('repositories.app.image_policy.db.semver')?.message ?? '', /not a valid semver range/);
  assert.match(by.get('repositories.app.image_policy.web.tag_regex')?.message ?? '', /not a valid regular expression/);
  assert.ok(
    bad.errors.some((e) => e.path.startsWith('repositories.app.image_policy.api')),
    JSON.stringify(bad.errors),
  );
});
