import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, test } from 'node:test';
import { maskSecrets, registerSecretValues, secretEnvValues, valueMasker } from '../../../src/lib/redact.ts';
import { createLogger } from '../../../src/logger.ts';

afterEach(() => {
  registerSecretValues('environment', []);
  registerSecretValues('projects', []);
});

test('registered secret values are masked by maskSecrets and therefore by the logger', () => {
  registerSecretValues('environment', ['s3cret-auth-pw', 'abc', undefined]);
  registerSecretValues('projects', ['repo-token-123456']);
  assert.equal(maskSecrets('login s3cret-auth-pw / abc / repo-token-123456'), 'login *** / abc / ***');
  const lines: string[] = [];
  const log = createLogger({
    level: 'info',
    format: 'json',
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  log.info({ detail: { out: 'git said repo-token-123456' } }, 'compose printed s3cret-auth-pw');
  assert.equal(lines.join('').includes('repo-token-123456'), false);
  assert.equal(lines.join('').includes('s3cret-auth-pw'), false);
  // A source's new list replaces its old one: a removed token is no longer masked.
  registerSecretValues('projects', []);
  assert.equal(maskSecrets('repo-token-123456'), 'repo-token-123456');
});

test('secretEnvValues: secret-named variables, list parts and key-file lines, but not paths or comments', () => {
  const values = secretEnvValues({
    SHIPARR_AUTH_PASSWORD: 'pw-123456',
    SHIPARR_API_TOKENS: 'ci:token-aaaaaaaa, deploy=token-bbbbbbbb',
    SOPS_AGE_KEY: '# created: 2024-01-01\n# public key: age1xyz\nAGE-SECRET-KEY-1ABCDEF',
    SOPS_AGE_KEY_FILE: '/keys/age.txt',
    GITHUB_TOKEN: 'ghtoken-1234',
    PATH: '/usr/bin',
    FEATURE_TOKEN: 'true',
  });
  for (const v of ['pw-123456', 'token-aaaaaaaa', 'token-bbbbbbbb', 'AGE-SECRET-KEY-1ABCDEF', 'ghtoken-1234'])
    assert.ok(values.includes(v), v);
  for (const v of ['/keys/age.txt', '/usr/bin', 'public', 'created:', '# public key: age1xyz', 'true'])
    assert.equal(values.includes(v), false, v);
});

test('valueMasker masks values of at least 6 characters, longest first', () => {
  const mask = valueMasker(['true', '1', 'hunter2hunter2', 'hunter2hunter2-long']);
  assert.equal(mask('debug=true n=1 a=hunter2hunter2 b=hunter2hunter2-long'), 'debug=true n=1 a=*** b=***');
});
