/** @module REST routes through real HTTP: success and error cases of every /api route and /containers logs. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConflictError } from '../../../src/errors.ts';
import { createApp } from '../../../src/http/app.ts';
import type { Deployment } from '../../../src/domain/types.ts';
import {
  captureLogger,
  deployment,
  type FakeContainers,
  type FakeSupervisor,
  serve,
  type Served,
  world,
} from './fakes.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
const json = async (res: Response): Promise<any> => JSON.parse(await res.text());

describe('REST API', () => {
  let s: Served;
  let sup: FakeSupervisor;
  before(async () => {
    s = await serve();
    sup = s.deps.supervisor as FakeSupervisor;
  });
  after(() => s.close());

  test('GET /api/health answers the report with no-store', async () => {
    const res = await fetch(`${s.url}/api/health`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const body = await json(res);
    assert.equal(body.status, 'ok');
    assert.equal(body.version, '0.1.0');
  });

  test('GET /api/projects lists projects with their config errors', async () => {
    const body = await json(await fetch(`${s.url}/api/projects`));
    assert.deepEqual(
      body.map((p: { name: string }) => p.name),
      ['homelab', 'lab', 'broken'],
    );
    assert.equal(body[2].error[0].path, 'repositories.x.url');
  });

  test('GET /api/projects/:name and its repositories', async () => {
    const one = await fetch(`${s.url}/api/projects/homelab`);
    assert.equal(one.status, 200);
    assert.equal((await json(one)).description, 'Services homelab');
    const repos = await json(await fetch(`${s.url}/api/projects/homelab/repositories`));
    assert.deepEqual(
      repos.map((r: { key: string }) => r.key),
      ['homelab/media-stack', 'homelab/dns'],
    );
  });

  test('unknown project → 404 JSON, invalid name → 400', async () => {
    const res = await fetch(`${s.url}/api/projects/nope`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(await json(res), { error: { code: 'NOT_FOUND', message: 'project "nope" not found' } });
    const bad = await fetch(`${s.url}/api/projects/..%2Fetc/repositories`);
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).error.code, 'INVALID_NAME');
  });

  test('GET /api/repositories lists all; by id and by URL-encoded key', async () => {
    const list = await json(await fetch(`${s.url}/api/repositories`));
    assert.equal(list.length, 3);
    const byId = await json(await fetch(`${s.url}/api/repositories/2`));
    assert.equal(byId.key, 'homelab/dns');
    assert.equal(byId.state, 'idle');
    assert.equal(byId.since, '2025-06-28T18:00:00.000Z');
    const byKey = await fetch(`${s.url}/api/repositories/${encodeURIComponent('homelab/media-stack')}`);
    assert.equal(byKey.status, 200);
    assert.equal((await json(byKey)).id, 1);
  });

  test('repository URLs and errors are shown without credentials', async () => {
    const w = world();
    w.supervisor.repos[0] = {
      ...w.supervisor.repos[0]!,
      url: 'https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/acme/m.git',
      lastError: { stage: 'pulling', code: 'GIT_AUTH', message: 'fetch https://bob:s3cretpass@git.example/x failed' },
    };
    const t = await serve(w);
    try {
      const text = await (await fetch(`${t.url}/api/repositories/1`)).text();
      assert.doesNotMatch(text, /ghp_abcdef|s3cretpass/);
      assert.match(text, /"url":"https:\/\/github.com\/acme\/m.git"/);
    } finally {
      await t.close();
    }
  });

  test('bad and unknown repository ids', async () => {
    for (const [path, status, code] of [
      ['/api/repositories/999', 404, 'NOT_FOUND'],
      ['/api/repositories/homelab%2Fnope', 404, 'NOT_FOUND'],
      ['/api/repositories/abc', 400, 'INVALID_ID'],
      ['/api/repositories/-1', 400, 'INVALID_ID'],
      ['/api/repositories/01', 400, 'INVALID_ID'],
      ['/api/repositories/1e3', 400, 'INVALID_ID'],
      ['/api/repositories/..%2F..%2Fetc', 400, 'INVALID_ID'],
      ['/api/repositories/99999999999999999999', 400, 'INVALID_ID'],
    ] as const) {
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, status, path);
      assert.equal((await json(res)).error.code, code, path);
    }
  });

  test('GET deployments: default page, limit/before paging, bad query values', async () => {
    const page = await json(await fetch(`${s.url}/api/repositories/1/deployments`));
    assert.deepEqual(
      page.items.map((d: Deployment) => d.id),
      [2, 1],
    );
    assert.equal(page.nextBefore, null);
    const first = await json(await fetch(`${s.url}/api/repositories/1/deployments?limit=1`));
    assert.deepEqual(
      first.items.map((d: Deployment) => d.id),
      [2],
    );
    assert.equal(first.nextBefore, 2);
    const second = await json(
      await fetch(`${s.url}/api/repositories/1/deployments?limit=1&before=${first.nextBefore}`),
    );
    assert.deepEqual(
      second.items.map((d: Deployment) => d.id),
      [1],
    );
    assert.equal(second.nextBefore, null);
    for (const q of [
      'limit=0',
      'limit=101',
      'limit=abc',
      'limit=1.5',
      'before=0',
      'before=x',
      'limit=1&limit=2',
      'limit=',
    ]) {
      const res = await fetch(`${s.url}/api/repositories/1/deployments?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal((await json(res)).error.code, 'INVALID_QUERY', q);
    }
    assert.equal((await fetch(`${s.url}/api/repositories/77/deployments`)).status, 404);
  });

  test('POST deploy → 202 {deploymentId, status:pending} and records the command', async () => {
    const res = await fetch(`${s.url}/api/repositories/1/deploy`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(res.status, 202);
    const body = await json(res);
    assert.equal(body.status, 'pending');
    assert.equal(typeof body.deploymentId, 'number');
    assert.deepEqual(sup.callsOf('deploy').at(-1), {
      method: 'deploy',
      key: 'homelab/media-stack',
      opts: { trigger: 'api' },
    });
  });

  test('POST deploy with a commit body passes it on (lowercased)', async () => {
    const res = await fetch(`${s.url}/api/repositories/homelab%2Fdns/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ commit: 'ABCDEF1' }),
    });
    assert.equal(res.status, 202);
    assert.deepEqual(sup.callsOf('deploy').at(-1)?.opts, { trigger: 'api', commit: 'abcdef1' });
  });

  test('POST deploy?wait=true returns the finished deployment with 200', async () => {
    sup.waitResult = async (id) =>
      deployment({ id, repositoryId: 1, repoKey: 'homelab/media-stack', status: 'success' });
    const res = await fetch(`${s.url}/api/repositories/1/deploy?wait=true&timeout=5`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.status, 'success');
    assert.equal(body.deploymentId, body.id);
    assert.equal(sup.callsOf('wait').at(-1)?.opts, 5000);
  });

  test('POST deploy?wait=true still running at timeout → 202 with the current row', async () => {
    sup.waitResult = async (id) =>
      deployment({
        id,
        repositoryId: 1,
        repoKey: 'homelab/media-stack',
        status: 'running',
        finishedAt: null,
        durationMs: null,
      });
    const res = await fetch(`${s.url}/api/repositories/1/deploy?wait=1`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(res.status, 202);
    assert.equal((await json(res)).status, 'running');
    assert.equal(sup.callsOf('wait').at(-1)?.opts, 600_000);
    sup.waitResult = async () => undefined;
    const none = await fetch(`${s.url}/api/repositories/1/deploy?wait=true`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(none.status, 202);
    assert.equal((await json(none)).status, 'pending');
  });

  test('POST deploy rejects bad wait/timeout before deploying', async () => {
    const n = sup.callsOf('deploy').length;
    for (const q of ['wait=maybe', 'wait=true&timeout=0', 'wait=true&timeout=3601', 'wait=true&timeout=ten']) {
      const res = await fetch(`${s.url}/api/repositories/1/deploy?${q}`, {
        method: 'POST',
        headers: { 'X-Shiparr-Request': '1' },
      });
      assert.equal(res.status, 400, q);
    }
    assert.equal(sup.callsOf('deploy').length, n);
  });

  test('POST rollback: empty body, commit body, 422 on bad commit/fields, 415, 400 bad JSON', async () => {
    const plain = await fetch(`${s.url}/api/repositories/1/rollback`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(plain.status, 202);
    assert.deepEqual(sup.callsOf('rollback').at(-1)?.opts, {});
    const withCommit = await fetch(`${s.url}/api/repositories/1/rollback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"commit":"0123456789abcdef0123456789abcdef01234567"}',
    });
    assert.equal(withCommit.status, 202);
    assert.deepEqual(sup.callsOf('rollback').at(-1)?.opts, { commit: '0123456789abcdef0123456789abcdef01234567' });
    const n = sup.callsOf('rollback').length;
    const cases: [string, string, number, string][] = [
      ['application/json', '{"commit":"xyz"}', 422, 'VALIDATION_FAILED'],
      ['application/json', '{"commit":"abc12"}', 422, 'VALIDATION_FAILED'],
      ['application/json', '{"commit":12345678}', 422, 'VALIDATION_FAILED'],
      ['application/json', '{"sha":"abcdef1"}', 422, 'VALIDATION_FAILED'],
      ['application/json', '[1,2]', 422, 'VALIDATION_FAILED'],
      ['application/json', '"abcdef1"', 422, 'VALIDATION_FAILED'],
      ['application/json', '{"commit":', 400, 'INVALID_JSON'],
      ['text/plain', '{"commit":"abcdef1"}', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ];
    for (const [type, body, status, code] of cases) {
      const res = await fetch(`${s.url}/api/repositories/1/rollback`, {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      });
      assert.equal(res.status, status, body);
      assert.equal((await json(res)).error.code, code, body);
    }
    assert.equal(sup.callsOf('rollback').length, n, 'no rollback for rejected bodies');
  });

  test('ConflictError from the supervisor → 409', async () => {
    sup.hasPreviousSuccess = false;
    const res = await fetch(`${s.url}/api/repositories/1/rollback`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    sup.hasPreviousSuccess = true;
    assert.equal(res.status, 409);
    assert.deepEqual(await json(res), {
      error: { code: 'CONFLICT', message: 'repository homelab/media-stack has no previous successful deployment' },
    });
  });

  test('suspend and resume → 200 RepoStatus; deploy while suspended → 409', async () => {
    const sus = await fetch(`${s.url}/api/repositories/3/suspend`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(sus.status, 200);
    assert.equal((await json(sus)).suspended, true);
    const dep = await fetch(`${s.url}/api/repositories/3/deploy`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(dep.status, 409);
    const res = await fetch(`${s.url}/api/repositories/lab%2Fweb/resume`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.suspended, false);
    assert.equal(body.state, 'idle');
    assert.equal(
      (await fetch(`${s.url}/api/repositories/42/suspend`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } }))
        .status,
      404,
    );
  });

  test('GET /api/deployments/:id and logs (text/plain, masked)', async () => {
    const d = await fetch(`${s.url}/api/deployments/2`);
    assert.equal(d.status, 200);
    assert.equal((await json(d)).repoKey, 'homelab/media-stack');
    const logs = await fetch(`${s.url}/api/deployments/2/logs`);
    assert.equal(logs.status, 200);
    assert.equal(logs.headers.get('content-type'), 'text/plain; charset=utf-8');
    const text = await logs.text();
    assert.match(text, /compose up ok/);
    assert.doesNotMatch(text, /hunter2secret/);
    const empty = await fetch(`${s.url}/api/deployments/1/logs`);
    assert.equal(empty.status, 200);
    assert.equal(await empty.text(), '');
    assert.equal((await fetch(`${s.url}/api/deployments/999`)).status, 404);
    assert.equal((await fetch(`${s.url}/api/deployments/999/logs`)).status, 404);
    assert.equal((await fetch(`${s.url}/api/deployments/x`)).status, 400);
  });

  test('POST /api/reload → 200 with the result', async () => {
    sup.reloadResult = {
      errors: [{ file: 'a.yaml', path: 'project', message: 'is required' }],
      added: ['x/y'],
      removed: [],
      changed: [],
    };
    const res = await fetch(`${s.url}/api/reload`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), sup.reloadResult);
  });

  test('GET /containers/:id/logs: managed → text, unmanaged → 404, bad id/tail/since → 400', async () => {
    const containers = s.deps.containers as FakeContainers;
    const ok = await fetch(`${s.url}/containers/abc123/logs?tail=50&since=1700000000`);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await ok.text(), 'line 1\nline 2\n');
    assert.deepEqual(containers.calls.at(-1), { id: 'abc123', q: { tail: 50, since: 1700000000 } });
    await fetch(`${s.url}/containers/abc123/logs`);
    assert.deepEqual(containers.calls.at(-1)?.q, { tail: 100 });
    const unmanaged = await fetch(`${s.url}/containers/other/logs`);
    assert.equal(unmanaged.status, 404);
    assert.equal((await json(unmanaged)).error.code, 'NOT_FOUND');
    const calls = containers.calls.length;
    for (const p of [
      '/containers/..%2F..%2Fetc/logs',
      '/containers/a%20b/logs',
      `/containers/${'x'.repeat(129)}/logs`,
      '/containers/abc123/logs?tail=0',
      '/containers/abc123/logs?tail=5001',
      '/containers/abc123/logs?tail=x',
      '/containers/abc123/logs?since=-1',
      '/containers/abc123/logs?since=1.5',
    ]) {
      assert.equal((await fetch(`${s.url}${p}`)).status, 400, p);
    }
    assert.equal(containers.calls.length, calls, 'the reader is never asked for invalid input');
  });

  test('unknown route → 404 JSON; wrong method on a known path → 405 with Allow', async () => {
    const res = await fetch(`${s.url}/api/nothing`);
    assert.equal(res.status, 404);
    assert.equal((await json(res)).error.code, 'NOT_FOUND');
    const wrong = await fetch(`${s.url}/api/repositories/1`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.match(wrong.headers.get('allow') ?? '', /GET/);
    assert.equal((await json(wrong)).error.code, 'METHOD_NOT_ALLOWED');
    const get = await fetch(`${s.url}/api/repositories/1/deploy`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    const hook = await fetch(`${s.url}/api/webhooks/github`);
    assert.equal(hook.status, 405);
  });

  test('GET / serves the web UI page with a strict CSP, no inline code and no external assets', async () => {
    const res = await fetch(`${s.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    // Built or not (the browser tests cover the bundle), the page has no inline script, style or handler.
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    assert.doesNotMatch(html, /https?:\/\//);
    assert.doesNotMatch(html, /(src|href)="\//, 'relative URLs only (sub-path proxies)');
    assert.equal((await fetch(`${s.url}/ui/..%2Fmanifest.json`)).status, 404);
    assert.equal((await fetch(`${s.url}/ui/manifest.json`)).status, 404);
  });
});

describe('errors', () => {
  test('an unexpected error → 500 "internal error", no stack, logged through deps.log', async () => {
    const { log, lines } = captureLogger();
    const w = world();
    w.supervisor.reload = async () => {
      throw new Error('database is locked at /secret/path');
    };
    const s = await serve({ ...w, log });
    try {
      const res = await fetch(`${s.url}/api/reload`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } });
      assert.equal(res.status, 500);
      const text = await res.text();
      assert.deepEqual(JSON.parse(text), { error: { code: 'INTERNAL', message: 'internal error' } });
      assert.doesNotMatch(text, /secret|at /);
      const logged = lines.find((l) => l['msg'] === 'http request failed');
      assert.ok(logged, 'the 500 is logged');
      assert.equal(logged['path'], '/api/reload');
    } finally {
      await s.close();
    }
  });

  test('a thrown AppError keeps its status and code', async () => {
    const w = world();
    w.supervisor.suspend = () => {
      throw new ConflictError('already suspended');
    };
    const s = await serve(w);
    try {
      const res = await fetch(`${s.url}/api/repositories/1/suspend`, {
        method: 'POST',
        headers: { 'X-Shiparr-Request': '1' },
      });
      assert.equal(res.status, 409);
      assert.equal((await json(res)).error.message, 'already suspended');
    } finally {
      await s.close();
    }
  });

  test('createApp refuses auth enabled without a password', () => {
    const w = world();
    const base = {
      ...w,
      health: async () => {
        throw new Error('unused');
      },
      log: captureLogger().log,
    };
    assert.throws(() => createApp({ ...base, auth: { enabled: true, username: 'admin' } }), /no password/);
    assert.throws(
      () => createApp({ ...base, auth: { enabled: true, username: 'admin', password: '' } }),
      /no password/,
    );
    assert.ok(createApp({ ...base, auth: { enabled: false, username: 'admin' } }));
  });

  test('a degraded health report is still 200 (alive) with status "degraded"', async () => {
    const s = await serve({
      health: async () => ({
        status: 'degraded',
        db: { ok: true },
        docker: { ok: false, error: 'connect ENOENT' },
        config: { ok: true, errors: [] },
        version: '0.1.0',
        uptimeSeconds: 1,
      }),
    });
    try {
      const res = await fetch(`${s.url}/api/health`);
      assert.equal(res.status, 200);
      const body = await json(res);
      assert.equal(body.status, 'degraded');
      assert.equal(body.docker.ok, false);
    } finally {
      await s.close();
    }
  });
});
