/** @module The root logger redacts secret keys and masks credentials in every string it writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger.ts';
import { maskSecrets } from '../../src/lib/redact.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), text: () => lines.join('') };
}

test('a logged object containing a token prints [Redacted]', () => {
  const c = capture();
  c.log.info(
    { token: 'ghp_supersecret', repo: { token: 'nested-secret', url: 'x' }, password: 'hunter2', sopsAgeKey: 'k' },
    'hello',
  );
  const out = c.text();
  const row = JSON.parse(out) as Record<string, unknown>;
  assert.equal(row.token, '[Redacted]');
  assert.equal((row.repo as Record<string, unknown>).token, '[Redacted]');
  assert.equal(row.password, '[Redacted]');
  assert.equal(row.sopsAgeKey, '[Redacted]');
  for (const s of ['ghp_supersecret', 'nested-secret', 'hunter2']) assert.ok(!out.includes(s), s);
});

test('authorization headers are redacted', () => {
  const c = capture();
  c.log.info({ req: { headers: { authorization: 'Basic dXNlcjpwYXNz', cookie: 'sid=1' } } }, 'request');
  const out = c.text();
  assert.ok(!out.includes('dXNlcjpwYXNz'));
  assert.match(out, /\[Redacted\]/);
});

test('URL credentials, age keys and bearer tokens are masked inside strings and messages', () => {
  const c = capture();
  const key = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
  c.log.warn(
    { url: 'https://user:pa55word@git.example.com/r.git', note: `key ${key}` },
    'clone https://x-access-token:tok123456@github.com/a/b failed with Bearer abcdefghijklmnop',
  );
  const out = c.text();
  for (const s of ['pa55word', 'tok123456', key, 'abcdefghijklmnop'])
    assert.ok(!out.includes(s), `${s} leaked: ${out}`);
  assert.match(out, /https:\/\/\*\*\*@git\.example\.com/);
});

test('errors keep their message with secrets masked by the caller-facing helper', () => {
  assert.equal(maskSecrets('fetch https://a:b@h/x'), 'fetch https://***@h/x');
  assert.equal(maskSecrets('plain text stays'), 'plain text stays');
});

test('secrets inside logged errors (message and stack) are masked', () => {
  const c = capture();
  c.log.error({ err: new Error('clone https://user:s3cretpw@host/x failed') }, 'boom');
  const out = c.text();
  assert.ok(!out.includes('s3cretpw'), out);
  assert.match(out, /clone https:\/\/\*\*\*@host\/x failed/);
});
