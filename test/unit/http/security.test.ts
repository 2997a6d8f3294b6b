/**
 * @module CSRF, DNS-rebinding and authentication modes through real HTTP: the real Koa app over fake ports, requests
 * sent with node:http so the Host, Origin and Sec-Fetch-Site headers are exactly what a browser or attacker would send.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp } from '../../../src/http/app.ts';
import { addressMatcher } from '../../../src/http/auth.ts';
import type { HttpDeps } from '../../../src/http/ports.ts';
import { basic, type FakeSupervisor, serve, type Served, world } from './fakes.ts';

const TOKEN = 'tok-0123456789abcdef0123456789abcdef';
const OTHER_TOKEN = 'tok-ffffffffffffffffffffffffffffffff';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One request with exactly these headers (node:http sends Host as given). */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Answer['body'] = {};
        try {
          parsed = JSON.parse(text) as Answer['body'];
        } catch {
          // Not JSON (the UI page): keep an empty object.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ADMIN = basic('admin', 'correct horse');
const DEPLOY = '/api/repositories/1/deploy';

describe('CSRF: state-changing routes take JSON or X-Shiparr-Request, from the same origin only', () => {
  let s: Served;
  let sup: FakeSupervisor;
  before(async () => {
    s = await serve({ auth: { enabled: true, username: 'admin', password: 'correct horse' } });
    sup = s.deps.supervisor as FakeSupervisor;
  });
  after(() => s.close());

  test('a form or text POST with valid credentials is refused (415 JSON) and nothing is deployed', async () => {
    const before = sup.calls.length;
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'commit=abcdef1'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'],
      ['text/plain', '{"commit":"abcdef1"}'],
    ] as const) {
      for (const path of [
        DEPLOY,
        '/api/repositories/1/rollback',
        '/api/repositories/1/suspend',
        '/api/repositories/1/resume',
        '/api/reload',
      ]) {
        const r = await send(s.url, 'POST', path, { authorization: ADMIN, 'content-type': type }, body);
        assert.equal(r.status, 415, `${type} ${path}`);
        assert.equal(r.body.error?.code, 'UNSUPPORTED_MEDIA_TYPE');
        assert.match(r.body.error?.message ?? '', /X-Shiparr-Request: 1/);
      }
    }
    // A bodiless POST without the header is what a form with no fields (or an <img>-style trick) sends.
    assert.equal((await send(s.url, 'POST', DEPLOY, { authorization: ADMIN })).status, 415);
    assert.equal(sup.calls.length, before, 'no command reached the supervisor');
  });

  test('JSON (with or without a body) or the X-Shiparr-Request header is accepted', async () => {
    const n = sup.callsOf('deploy').length;
    const json = { authorization: ADMIN, 'content-type': 'application/json' };
    assert.equal((await send(s.url, 'POST', DEPLOY, json)).status, 202);
    assert.equal((await send(s.url, 'POST', DEPLOY, json, '{"commit":"abcdef1"}')).status, 202);
    assert.equal((await send(s.url, 'POST', DEPLOY, { authorization: ADMIN, 'X-Shiparr-Request': '1' })).status, 202);
    assert.equal((await send(s.url, 'POST', DEPLOY, { authorization: ADMIN, 'X-Shiparr-Request': 'yes' })).status, 415);
    assert.equal(sup.callsOf('deploy').length, n + 3);
  });

  test('cross-site and same-site requests are 403, same-origin and user-initiated (none) pass', async () => {
    const n = sup.callsOf('deploy').length;
    const ok = { authorization: ADMIN, 'X-Shiparr-Request': '1' };
    for (const site of ['cross-site', 'same-site']) {
      const r = await send(s.url, 'POST', DEPLOY, { ...ok, 'sec-fetch-site': site });
      assert.equal(r.status, 403, site);
      assert.equal(r.body.error?.code, 'CROSS_SITE_REQUEST');
    }
    for (const site of ['same-origin', 'none'])
      assert.equal((await send(s.url, 'POST', DEPLOY, { ...ok, 'sec-fetch-site': site })).status, 202, site);
    assert.equal(sup.callsOf('deploy').length, n + 2);
  });

  test('an Origin that is not the request host is 403; the own origin passes', async () => {
    const n = sup.callsOf('deploy').length;
    const ok = { authorization: ADMIN, 'content-type': 'application/json' };
    const host = new URL(s.url).host;
    for (const origin of ['https://evil.example', 'null', `http://${host}.evil.example`, 'http://localhost:1']) {
      const r = await send(s.url, 'POST', DEPLOY, { ...ok, origin });
      assert.equal(r.status, 403, origin);
      assert.equal(r.body.error?.code, 'CROSS_SITE_REQUEST');
    }
    assert.equal((await send(s.url, 'POST', DEPLOY, { ...ok, origin: `http://${host}` })).status, 202);
    assert.equal(sup.callsOf('deploy').length, n + 1);
  });

  test('reads stay readable cross-origin (no CSRF rule on GET); webhooks are exempt (signatures)', async () => {
    const get = await send(s.url, 'GET', '/api/repositories', {
      authorization: ADMIN,
      'sec-fetch-site': 'cross-site',
      origin: 'https://dash.example',
    });
    assert.equal(get.status, 200);
    const hook = await send(
      s.url,
      'POST',
      '/api/webhooks/github',
      { 'content-type': 'application/json', 'x-github-event': 'ping', 'sec-fetch-site': 'cross-site' },
      '{"zen":"hi"}',
    );
    assert.equal(hook.status, 200);
    assert.deepEqual(hook.body, { pong: true });
  });

  test('the audit principal of a Basic user reaches the supervisor', async () => {
    await send(s.url, 'POST', DEPLOY, { authorization: ADMIN, 'X-Shiparr-Request': '1' });
    assert.deepEqual(sup.callsOf('deploy').at(-1)?.opts, { trigger: 'api', triggeredBy: 'user:admin' });
  });
});

describe('DNS rebinding: without auth only allowed Host names are answered', () => {
  let s: Served;
  before(async () => {
    s = await serve();
  });
  after(() => s.close());

  test('a foreign Host is 403 on every route but /api/health', async () => {
    for (const [method, path] of [
      ['GET', '/api/repositories'],
      ['GET', '/'],
      ['GET', '/metrics'],
      ['GET', '/api/events'],
      ['POST', DEPLOY],
      ['POST', '/api/webhooks/github'],
    ] as const) {
      const r = await send(s.url, method, path, { host: 'attacker.example:8080', 'X-Shiparr-Request': '1' });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.body.error?.code, 'HOST_NOT_ALLOWED');
    }
    assert.equal((s.deps.supervisor as FakeSupervisor).callsOf('deploy').length, 0);
    const health = await send(s.url, 'GET', '/api/health', { host: 'attacker.example' });
    assert.equal(health.status, 200);
  });

  test('localhost, 127.0.0.1 and [::1] with any port pass', async () => {
    for (const host of ['localhost:8080', '127.0.0.1', '[::1]:9', 'LOCALHOST.'])
      assert.equal((await send(s.url, 'GET', '/api/repositories', { host })).status, 200, host);
  });

  test('SHIPARR_ALLOWED_HOSTS replaces the list; * disables the check; with auth there is no Host check', async () => {
    const listed = await serve({ allowedHosts: ['shiparr.lan', 'fd00::1'] });
    const any = await serve({ allowedHosts: ['*'] });
    const authed = await serve({ auth: { enabled: true, username: 'admin', password: 'pw' } });
    try {
      assert.equal((await send(listed.url, 'GET', '/api/projects', { host: 'shiparr.lan:80' })).status, 200);
      assert.equal((await send(listed.url, 'GET', '/api/projects', { host: '[fd00::1]:80' })).status, 200);
      assert.equal((await send(listed.url, 'GET', '/api/projects', { host: 'localhost' })).status, 403);
      assert.equal((await send(any.url, 'GET', '/api/projects', { host: 'whatever.example' })).status, 200);
      const withAuth = await send(authed.url, 'GET', '/api/projects', {
        host: 'shiparr.example.com',
        authorization: basic('admin', 'pw'),
      });
      assert.equal(withAuth.status, 200);
    } finally {
      await Promise.all([listed.close(), any.close(), authed.close()]);
    }
  });
});

describe('forward auth: the user header counts only from a trusted proxy', () => {
  const forward = (trustedProxies: string[]): Pick<HttpDeps, 'auth'> => ({
    auth: { enabled: false, mode: 'forward', username: 'admin', trustedProxies, forwardHeader: 'X-Forwarded-User' },
  });

  test('from a trusted address (127.0.0.1/32): the header is the user, recorded as user:<name>', async () => {
    const s = await serve(forward(['10.0.0.0/8', '127.0.0.1/32']));
    try {
      const sup = s.deps.supervisor as FakeSupervisor;
      assert.equal((await send(s.url, 'GET', '/api/repositories', { 'x-forwarded-user': 'alice' })).status, 200);
      const none = await send(s.url, 'GET', '/api/repositories');
      assert.equal(none.status, 401, 'no header from the proxy: not authenticated');
      assert.equal(none.headers['www-authenticate'], undefined, 'no Basic prompt in forward mode');
      assert.equal((await send(s.url, 'GET', '/api/repositories', { 'x-forwarded-user': '' })).status, 401);
      const r = await send(s.url, 'POST', DEPLOY, { 'x-forwarded-user': 'alice', 'X-Shiparr-Request': '1' });
      assert.equal(r.status, 202);
      assert.deepEqual(sup.callsOf('deploy').at(-1)?.opts, { trigger: 'api', triggeredBy: 'user:alice' });
      // Basic credentials mean nothing in forward mode.
      assert.equal((await send(s.url, 'GET', '/api/repositories', { authorization: basic('admin', 'x') })).status, 401);
    } finally {
      await s.close();
    }
  });

  test('from an untrusted address the header is ignored: 401, nothing deployed', async () => {
    const s = await serve(forward(['10.0.0.0/8', '::1/128']));
    try {
      const sup = s.deps.supervisor as FakeSupervisor;
      assert.equal((await send(s.url, 'GET', '/api/repositories', { 'x-forwarded-user': 'alice' })).status, 401);
      const r = await send(s.url, 'POST', DEPLOY, { 'x-forwarded-user': 'admin', 'X-Shiparr-Request': '1' });
      assert.equal(r.status, 401);
      assert.equal(sup.callsOf('deploy').length, 0);
    } finally {
      await s.close();
    }
  });

  test('an IPv4 client of a dual-stack listener (::ffff:127.0.0.1) matches an IPv4 block', async (t) => {
    const w = world();
    const app = createApp({
      ...w,
      health: async () => ({
        status: 'ok',
        db: { ok: true },
        docker: { ok: true },
        config: { ok: true, errors: [] },
        version: '0',
        uptimeSeconds: 0,
      }),
      log: pino({ level: 'silent' }),
      ...forward(['127.0.0.0/8']),
    });
    const server = http.createServer(app.callback());
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(0, '::', () => resolve(true));
    });
    if (!listening) {
      t.skip('no IPv6 on this machine');
      return;
    }
    try {
      const { port } = server.address() as AddressInfo;
      let peer = '';
      server.once('request', (req: http.IncomingMessage) => (peer = req.socket.remoteAddress ?? ''));
      const r = await send(`http://127.0.0.1:${port}`, 'GET', '/api/repositories', { 'x-forwarded-user': 'bob' });
      assert.equal(peer, '::ffff:127.0.0.1', 'the peer is an IPv4-mapped IPv6 address');
      assert.equal(r.status, 200);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('address matching: IPv4, IPv6 and IPv4-mapped blocks', () => {
    const m = addressMatcher(['192.168.0.0/16', 'fd00::/8', '10.1.2.3']);
    assert.equal(m('192.168.4.5'), true);
    assert.equal(m('::ffff:192.168.4.5'), true);
    assert.equal(m('192.169.0.1'), false);
    assert.equal(m('fd12::1'), true);
    assert.equal(m('fe80::1'), false);
    assert.equal(m('10.1.2.3'), true);
    assert.equal(m('10.1.2.4'), false);
    assert.equal(m(undefined), false);
  });
});

describe('API tokens: Authorization: Bearer in every mode', () => {
  const tokens = [
    { name: 'ci', token: TOKEN },
    { name: 'backup', token: OTHER_TOKEN },
  ];

  for (const mode of ['basic', 'none', 'forward'] as const) {
    test(`mode ${mode}: a good token is token:<name>, a bad one 401 and nothing deployed`, async () => {
      const s = await serve({
        auth: {
          enabled: mode === 'basic',
          mode,
          username: 'admin',
          password: 'pw',
          tokens,
          trustedProxies: ['10.0.0.1'],
        },
      });
      try {
        const sup = s.deps.supervisor as FakeSupervisor;
        const ok = await send(s.url, 'POST', DEPLOY, { authorization: `Bearer ${TOKEN}`, 'X-Shiparr-Request': '1' });
        assert.equal(ok.status, 202);
        assert.deepEqual(sup.callsOf('deploy').at(-1)?.opts, { trigger: 'api', triggeredBy: 'token:ci' });
        const other = await send(s.url, 'GET', '/api/repositories', { authorization: `bearer ${OTHER_TOKEN}` });
        assert.equal(other.status, 200, 'the scheme is case-insensitive');
        for (const bad of [`Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, 'Bearer ', `Bearer ${'x'.repeat(36)}`]) {
          const r = await send(s.url, 'POST', DEPLOY, { authorization: bad, 'X-Shiparr-Request': '1' });
          assert.equal(r.status, 401, bad);
          assert.equal(r.body.error?.code, 'UNAUTHORIZED');
          assert.ok(!JSON.stringify(r.body).includes(TOKEN.slice(4)), 'the token is not echoed');
        }
        assert.equal(sup.callsOf('deploy').length, 1);
      } finally {
        await s.close();
      }
    });
  }

  test('basic good/bad next to tokens: wrong password 401, right one user:admin', async () => {
    const s = await serve({ auth: { enabled: true, username: 'admin', password: 'pw', tokens } });
    try {
      const sup = s.deps.supervisor as FakeSupervisor;
      const bad = await send(s.url, 'POST', DEPLOY, {
        authorization: basic('admin', 'nope'),
        'X-Shiparr-Request': '1',
      });
      assert.equal(bad.status, 401);
      assert.equal(bad.headers['www-authenticate'], 'Basic realm="Shiparr"');
      assert.equal(sup.callsOf('deploy').length, 0);
      const good = await send(s.url, 'POST', DEPLOY, { authorization: basic('admin', 'pw'), 'X-Shiparr-Request': '1' });
      assert.equal(good.status, 202);
      assert.deepEqual(sup.callsOf('deploy').at(-1)?.opts, { trigger: 'api', triggeredBy: 'user:admin' });
    } finally {
      await s.close();
    }
  });
});
