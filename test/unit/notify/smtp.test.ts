/** SMTP against a real local SMTP server (smtp-server): one mail per recipient, headers, body, AUTH PLAIN. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { sendNotification } from '../../../src/notify/index.ts';

interface Received {
  from: string;
  to: string[];
  raw: string;
}

async function startSmtp(
  extra: Partial<SMTPServerOptions> = {},
): Promise<{ port: number; mails: Received[]; close(): Promise<void> }> {
  const mails: Received[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
    ...extra,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const MSG = { title: 'Deploy ok', body: 'line 1\nline 2' };

test('smtp: one mail per recipient with From (name), To, Subject and the text body', async () => {
  const smtp = await startSmtp();
  try {
    const url = `smtp://127.0.0.1:${smtp.port}/?from=shiparr@example.com&to=ops@example.com,dev+tag@example.com&fromname=Shiparr&starttls=no`;
    const r = await sendNotification(url, MSG, { retryDelayMs: 10 });
    assert.equal(r.ok, true, r.error);
    assert.equal(r.service, 'smtp');
    assert.equal(smtp.mails.length, 2);
    assert.deepEqual(
      smtp.mails.map((m) => [m.from, m.to]),
      [
        ['shiparr@example.com', ['ops@example.com']],
        ['shiparr@example.com', ['dev+tag@example.com']],
      ],
    );
    const [first, second] = smtp.mails;
    assert.match(first!.raw, /^From: Shiparr <shiparr@example\.com>\r$/m);
    assert.match(first!.raw, /^To: ops@example\.com\r$/m);
    assert.match(second!.raw, /^To: dev\+tag@example\.com\r$/m);
    assert.match(first!.raw, /^Subject: Deploy ok\r$/m);
    assert.match(first!.raw, /^Content-Type: text\/plain; charset=utf-8\r$/m);
    assert.match(first!.raw, /\r\n\r\nline 1\r\nline 2\r\n?$/);
  } finally {
    await smtp.close();
  }
});

test('smtp: AUTH PLAIN with the URL credentials; subject from the URL wins; a wrong password fails without leaking it', async () => {
  const logins: string[] = [];
  const smtp = await startSmtp({
    authOptional: false,
    allowInsecureAuth: true,
    authMethods: ['PLAIN'],
    onAuth(auth, _session, cb) {
      logins.push(`${auth.method}:${auth.username}`);
      if (auth.username === 'mailer' && auth.password === 'p@ss w0rd') cb(null, { user: 'mailer' });
      else cb(new Error('Invalid username or password'));
    },
  });
  try {
    const base = `127.0.0.1:${smtp.port}/?from=a@example.com&to=b@example.com&subject=Custom%20subject&starttls=no`;
    const ok = await sendNotification(`smtp://mailer:p%40ss%20w0rd@${base}`, MSG, { retryDelayMs: 10 });
    assert.equal(ok.ok, true, ok.error);
    assert.deepEqual(logins, ['PLAIN:mailer']);
    assert.match(smtp.mails[0]!.raw, /^Subject: Custom subject\r$/m);

    const bad = await sendNotification(`smtp://mailer:wrongpass1@${base}`, MSG, { retryDelayMs: 10 });
    assert.equal(bad.ok, false);
    assert.equal(bad.attempts, 1, 'authentication failures are permanent');
    assert.equal(bad.status, 535);
    assert.doesNotMatch(`${bad.error} ${bad.url}`, /wrongpass1/);
    assert.equal(smtp.mails.length, 1);
  } finally {
    await smtp.close();
  }
});

test('email:// is accepted as an alias of smtp://', async () => {
  const smtp = await startSmtp();
  try {
    const r = await sendNotification(
      `email://127.0.0.1:${smtp.port}/?from=a@example.com&to=b@example.com&starttls=no`,
      MSG,
      {},
    );
    assert.equal(r.ok, true, r.error);
    assert.equal(smtp.mails.length, 1);
  } finally {
    await smtp.close();
  }
});
