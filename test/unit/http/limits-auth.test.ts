/**
 * @module Brute force: after SHIPARR_AUTH_MAX_FAILURES 401 answers within 60 s an address gets 429 + Retry-After for
 * the block time, correct credentials and valid webhook signatures included; one warn line per block, no secrets;
 * the table of addresses is bounded. Through real HTTP; other addresses come from 127.0.0.x source addresses.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import Koa from 'koa';
import { errorMiddleware } from '../../../src/http/errors.ts';
import { createFailureLimiter } from '../../../src/http/limits.ts';
import { signatureHeaders } from '../../../src/http/webhooks.ts';
import { until } from '../../helpers/wait.ts';
import { basic, captureLogger, serve, world } from './fakes.ts';

const PASSWORD = 'correct horse battery';
const WEBHOOK_SECRET = 'hook-secret-for-limits';
const BLOCK_MSG = 'too many failed authentications: address blocked';

/** GET from a given local source address (127.0.0.x all reach a server on 127.0.0.1 on Linux). */
function getFrom(url: string, localAddress: string, headers: Record<string, string> = {}): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, localAddress, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('failed-authentication limiter', () => {
  test('20 wrong passwords → the 21st request is 429 with Retry-After, correct credentials too; one warn line', async () => {
    const { log, lines } = captureLogger();
    const s = await serve({ log, auth: { enabled: true, username: 'admin', password: PASSWORD } });
    try {
      const good = { authorization: basic('admin', PASSWORD) };
      assert.equal((await fetch(`${s.url}/api/repositories`, { headers: good })).status, 200);
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${s.url}/api/repositories`, {
          headers: { authorization: basic('admin', `guess-${i}`) },
        });
        assert.equal(res.status, 401, `attempt ${i + 1}`);
      }
      const bad = await fetch(`${s.url}/api/repositories`, { headers: { authorization: basic('admin', 'guess-21') } });
      assert.equal(bad.status, 429);
      const retry = Number(bad.headers.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${bad.headers.get('retry-after')}`);
      assert.deepEqual(((await bad.json()) as { error: { code: string } }).error.code, 'TOO_MANY_REQUESTS');

      const right = await fetch(`${s.url}/api/repositories`, { headers: good });
      assert.equal(right.status, 429, 'correct credentials are refused during the block');
      assert.ok(Number(right.headers.get('retry-after')) >= 1);
      // Health with credentials is refused too (it would tell a right guess from a wrong one); without, it answers.
      assert.equal((await fetch(`${s.url}/api/health`, { headers: good })).status, 429);
      assert.equal((await fetch(`${s.url}/api/health`)).status, 200);
      // Webhooks from the blocked address as well.
      const hook = await fetch(`${s.url}/api/webhooks/github`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'ping' },
        body: '{}',
      });
      assert.equal(hook.status, 429);

      const warns = lines.filter((l) => l['msg'] === BLOCK_MSG);
      assert.equal(warns.length, 1, 'one warn line per block');
      assert.equal(warns[0]!['level'], 40);
      assert.equal(warns[0]!['ip'], '127.0.0.1');
      assert.equal(warns[0]!['failures'], 20);
      const logged = JSON.stringify(lines);
      assert.ok(!logged.includes(PASSWORD) && !logged.includes('guess-'), 'no credentials in the log');
      assert.ok(!logged.includes(Buffer.from(`admin:${PASSWORD}`).toString('base64')));
    } finally {
      await s.close();
    }
  });

  test('the block ends after SHIPARR_AUTH_BLOCK_SECONDS; other addresses are never affected', async () => {
    const s = await serve({
      auth: { enabled: true, username: 'admin', password: PASSWORD },
      limits: { authMaxFailures: 3, authBlockSeconds: 1 },
    });
    try {
      const good = { authorization: basic('admin', PASSWORD) };
      for (let i = 0; i < 3; i++) assert.equal(await getFrom(`${s.url}/api/repositories`, '127.0.0.1'), 401);
      assert.equal(await getFrom(`${s.url}/api/repositories`, '127.0.0.1', good), 429);
      assert.equal(await getFrom(`${s.url}/api/repositories`, '127.0.0.2', good), 200, 'another address');
      await until(
        async () => (await getFrom(`${s.url}/api/repositories`, '127.0.0.1', good)) === 200,
        'the block to end',
        5_000,
      );
    } finally {
      await s.close();
    }
  });

  test('20 bad webhook signatures → 429, a correctly signed delivery from that address too', async () => {
    const w = world();
    w.supervisor.targets = [{ key: 'homelab/media-stack', url: 'github.com/acme/media-stack', branch: 'main' }];
    const { log, lines } = captureLogger();
    const s = await serve({ ...w, log, webhookSecret: WEBHOOK_SECRET });
    try {
      const body = JSON.stringify({
        ref: 'refs/heads/main',
        repository: { clone_url: 'https://github.com/acme/media-stack.git' },
      });
      const post = (headers: Record<string, string>) =>
        fetch(`${s.url}/api/webhooks/github`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-github-event': 'push', ...headers },
          body,
        });
      for (let i = 0; i < 20; i++)
        assert.equal((await post(signatureHeaders('github', body, `guess-${i}`))).status, 401, `attempt ${i + 1}`);
      const valid = await post(signatureHeaders('github', body, WEBHOOK_SECRET));
      assert.equal(valid.status, 429);
      assert.ok(Number(valid.headers.get('retry-after')) >= 1);
      assert.deepEqual(w.supervisor.callsOf('check'), []);
      assert.equal(lines.filter((l) => l['msg'] === BLOCK_MSG).length, 1);
      assert.ok(!JSON.stringify(lines).includes(WEBHOOK_SECRET));
    } finally {
      await s.close();
    }
  });

  test('the address table is bounded: past the cap the least recently failed address is forgotten', async () => {
    const { log, lines } = captureLogger();
    const app = new Koa();
    app.use(errorMiddleware);
    app.use(createFailureLimiter({ log, limits: { authMaxFailures: 2, authBlockSeconds: 60 } }, { maxAddresses: 3 }));
    app.use((ctx) => {
      ctx.status = ctx.get('authorization') === 'ok' ? 200 : 401;
      ctx.body = {};
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      for (let i = 0; i < 2; i++) assert.equal(await getFrom(url, '127.0.0.2'), 401);
      assert.equal(await getFrom(url, '127.0.0.2', { authorization: 'ok' }), 429, '127.0.0.2 blocked');
      // Three more addresses fail once each: the table (cap 3) drops 127.0.0.2, the least recent.
      for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5']) assert.equal(await getFrom(url, a), 401);
      assert.equal(await getFrom(url, '127.0.0.2', { authorization: 'ok' }), 200, 'forgotten once the table is full');
      // Those three are still counted: one more failure blocks each of the two most recent ones.
      assert.equal(await getFrom(url, '127.0.0.5'), 401);
      assert.equal(await getFrom(url, '127.0.0.5', { authorization: 'ok' }), 429);
      assert.equal(lines.filter((l) => l['msg'] === BLOCK_MSG).length, 2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
