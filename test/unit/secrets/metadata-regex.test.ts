import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SopsError } from '../../../src/secrets/errors.ts';
import { parseMetadata, shouldBeEncrypted } from '../../../src/secrets/metadata.ts';

const base = { lastmodified: '2024-01-01T00:00:00Z', mac: 'x', age: [{ recipient: 'age1x', enc: 'e' }] };

test('encrypted_regex uses RE2: a catastrophic-backtracking pattern against a long key still decides', () => {
  const meta = parseMetadata({ ...base, encrypted_regex: '(a+)+$' });
  const longKey = `${'a'.repeat(100_000)}!`;
  // A backtracking engine would not return from this within any test timeout; RE2 is linear.
  assert.equal(shouldBeEncrypted(meta.rules, [longKey]), false);
  assert.equal(shouldBeEncrypted(meta.rules, ['aaaa']), true);
  const comments = parseMetadata({ ...base, unencrypted_comment_regex: '(x+x+)+y' });
  assert.equal(shouldBeEncrypted(comments.rules, ['k'], ['x'.repeat(50_000)]), true);
  assert.equal(shouldBeEncrypted(comments.rules, ['k'], ['xxy']), false);
});

test('RE2 syntax of sops: (?i) flags, unanchored search like Go MatchString', () => {
  const meta = parseMetadata({ ...base, encrypted_regex: '(?i)^(DATA|stringdata)$' });
  assert.equal(shouldBeEncrypted(meta.rules, ['data']), true);
  assert.equal(shouldBeEncrypted(meta.rules, ['StringData']), true);
  assert.equal(shouldBeEncrypted(meta.rules, ['kind']), false);
  const unanchored = parseMetadata({ ...base, unencrypted_regex: 'public' });
  assert.equal(shouldBeEncrypted(unanchored.rules, ['my_public_key']), false);
  assert.equal(shouldBeEncrypted(unanchored.rules, ['password']), true);
});

for (const [key, pattern] of [
  ['encrypted_regex', '(?=x)'],
  ['unencrypted_regex', '(a)\\1'],
  ['encrypted_comment_regex', '(?<=a)b'],
  ['unencrypted_comment_regex', '(?!x)y'],
] as const) {
  test(`a pattern RE2 refuses is a clear error naming the key: ${key} ${pattern}`, () => {
    assert.throws(
      () => parseMetadata({ ...base, [key]: pattern }),
      (err: unknown) => {
        assert.ok(err instanceof SopsError);
        assert.equal(err.code, 'SOPS_MALFORMED');
        assert.match(err.message, new RegExp(`"${key}" is not a valid RE2 regular expression`));
        return true;
      },
    );
  });
}
