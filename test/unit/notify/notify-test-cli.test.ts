/** `shiparr notify-test <url>`: exit codes 0 / 1 / 2 and a masked reason. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notifyTestCommand } from '../../../src/cli/notify-test.ts';
import { startCaptureServer } from './http-capture.ts';

function sink() {
  let text = '';
  return {
    write: (s: string) => void (text += s),
    get text() {
      return text;
    },
  };
}

test('exit 0 when the service accepts the test message', async () => {
  const s = await startCaptureServer(() => ({ status: 200 }));
  try {
    const out = sink();
    const err = sink();
    const code = await notifyTestCommand([`generic://127.0.0.1:${s.port}/hook?disabletls=yes`], out, err);
    assert.equal(code, 0, err.text);
    assert.match(out.text, /^ok: test notification accepted by generic/);
    assert.match(s.requests[0]!.body, /test notification/);
  } finally {
    await s.close();
  }
});

test('exit 1 with the reason and a masked URL when the service refuses', async () => {
  const s = await startCaptureServer(() => ({ status: 401, body: 'unauthorized' }));
  try {
    const out = sink();
    const err = sink();
    const code = await notifyTestCommand([`ntfy://bob:Sup3rS3cretPass@127.0.0.1:${s.port}/t?scheme=http`], out, err);
    assert.equal(code, 1);
    assert.match(
      err.text,
      /failed: ntfy \(ntfy:\/\/\*\*\*@127\.0\.0\.1:\d+\/\*\*\*\?scheme=http\): HTTP 401: unauthorized after 1 attempt/,
    );
    assert.equal(err.text.includes('Sup3rS3cretPass'), false);
  } finally {
    await s.close();
  }
});

test('exit 1 for an invalid URL (reason without the token), 2 for usage errors', async () => {
  const err = sink();
  assert.equal(await notifyTestCommand(['telegram://1:AAEtokenvalue@telegram'], sink(), err), 1);
  assert.match(err.text, /telegram: missing chats/);
  assert.equal(err.text.includes('AAEtokenvalue'), false);
  assert.equal(await notifyTestCommand([], sink(), sink()), 2);
  assert.equal(await notifyTestCommand(['a://b', 'c://d'], sink(), sink()), 2);
  assert.equal(await notifyTestCommand(['--bogus'], sink(), sink()), 2);
  assert.equal(await notifyTestCommand(['discord://t@1', '--timeout', 'x'], sink(), sink()), 2);
});
