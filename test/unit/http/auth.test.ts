/** @module Basic Auth matrix: every protected route 401 + challenge without credentials, served with them; open routes stay open. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basic, serve, type Served } from './fakes.ts';

const PROTECTED: [method: string, path: string, expected: number][] = [
  ['GET', '/', 200],
  ['GET', '/api/projects', 200],
  ['GET', '/api/projects/homelab', 200],
  ['GET', '/api/projects/homelab/repositories', 200],
  ['GET', '/api/repositories', 200],
  ['GET', '/api/repositories/1', 200],
  ['GET', '/api/repositories/1/deployments', 200],
  ['POST', '/api/repositories/1/deploy', 202],
  ['POST', '/api/repositories/1/rollback', 202],
  ['POST', '/api/repositories/1/suspend', 200],
  ['POST', '/api/repositories/1/resume', 200],
  ['GET', '/api/deployments/2', 200],
  ['GET', '/api/deployments/2/logs', 200],
  ['POST', '/api/reload', 200],
  ['GET', '/containers/abc123/logs', 200],
  ['GET', '/widget/dashy?project=homelab', 200],
  ['GET', '/widget/dashy/custom-list?project=homelab', 200],
  ['GET', '/metrics', 200],
  ['GET', '/health/project/homelab', 503],
];

describe('auth enabled', () => {
  let s: Served;
  before(async () => {
    // Many refusals from one address in a row: the failed-authentication limiter (limits-*.test.ts) is out of the way.
    s = await serve({
      auth: { enabled: true, username: 'admin', password: 'correct horse' },
      limits: { authMaxFailures: 1_000_000 },
    });
  });
  after(() => s.close());

  for (const [method, path, expected] of PROTECTED) {
    test(`${method} ${path}: 401 without / with wrong credentials, ${expected} with them`, async () => {
      const none = await fetch(`${s.url}${path}`, { method });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Basic realm="Shiparr"');
      assert.equal((JSON.parse(await none.text()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      for (const auth of [basic('admin', 'wrong'), basic('root', 'correct horse'), 'Bearer abc', 'Basic !!!']) {
        const bad = await fetch(`${s.url}${path}`, { method, headers: { authorization: auth } });
        assert.equal(bad.status, 401, auth);
      }
      const ok = await fetch(`${s.url}${path}`, {
        method,
        headers: { authorization: basic('admin', 'correct horse'), 'X-Shiparr-Request': '1' },
      });
      assert.equal(ok.status, expected);
      await ok.arrayBuffer();
    });
  }

  test('GET /api/events: 401 without credentials, stream with them', async () => {
    assert.equal((await fetch(`${s.url}/api/events`)).status, 401);
    const ac = new AbortController();
    const res = await fetch(`${s.url}/api/events`, {
      headers: { authorization: basic('admin', 'correct horse') },
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    ac.abort();
  });

  test('/api/health and webhooks need no Basic credentials', async () => {
    assert.equal((await fetch(`${s.url}/api/health`)).status, 200);
    const hook = await fetch(`${s.url}/api/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping' },
      body: '{"zen":"hi"}',
    });
    assert.equal(hook.status, 200);
    assert.deepEqual(await hook.json(), { pong: true });
  });

  test('CORS headers stay on a widget 401 and the preflight needs no credentials', async () => {
    const res = await fetch(`${s.url}/widget/dashy?project=homelab`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const pre = await fetch(`${s.url}/widget/dashy/custom-list?project=homelab`, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
  });
});

describe('auth enabled with publicWidgets', () => {
  test('widgets are open, the API is not', async () => {
    const s = await serve({ auth: { enabled: true, username: 'admin', password: 'pw', publicWidgets: true } });
    try {
      assert.equal((await fetch(`${s.url}/widget/dashy?project=homelab`)).status, 200);
      assert.equal((await fetch(`${s.url}/widget/dashy/custom-list?project=homelab`)).status, 200);
      assert.equal((await fetch(`${s.url}/api/repositories`)).status, 401);
    } finally {
      await s.close();
    }
  });
});

describe('auth disabled', () => {
  test('every protected route answers without credentials', async () => {
    const s = await serve();
    try {
      for (const [method, path, expected] of PROTECTED) {
        const res = await fetch(`${s.url}${path}`, { method, headers: { 'X-Shiparr-Request': '1' } });
        assert.equal(res.status, expected, `${method} ${path}`);
        assert.equal(res.headers.get('www-authenticate'), null);
        await res.arrayBuffer();
      }
    } finally {
      await s.close();
    }
  });
});
