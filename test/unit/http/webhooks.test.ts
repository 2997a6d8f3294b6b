/** @module Webhooks: every provider's signature scheme, URL/branch matching, pings, refusals and the body limit. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { BODY_LIMIT } from '../../../src/http/body.ts';
import { branchFromRef, extractPush, normaliseRepoUrl, signatureHeaders, verifySignature, type Provider } from '../../../src/http/webhooks.ts';
import { captureLogger, type FakeSupervisor, serve, type Served, world } from './fakes.ts';

const REPO_SECRET = 'media-secret-1';
const GLOBAL_SECRET = 'global-secret-2';

function payload(provider: Provider, url: string, ref = 'refs/heads/main'): string {
  switch (provider) {
    case 'github':
      return JSON.stringify({ ref, repository: { clone_url: url, html_url: url.replace(/\.git$/, ''), ssh_url: 'git@github.com:acme/x.git' } });
    case 'gitlab':
      return JSON.stringify({ object_kind: 'push', ref, project: { git_http_url: url, web_url: url.replace(/\.git$/, '') } });
    case 'gitea':
      return JSON.stringify({ ref, repository: { clone_url: url, html_url: url.replace(/\.git$/, '') } });
    default:
      return JSON.stringify({ url, branch: ref.replace('refs/heads/', '') });
  }
}

const EVENT: Record<Provider, Record<string, string>> = {
  github: { 'x-github-event': 'push' },
  gitlab: { 'x-gitlab-event': 'Push Hook' },
  gitea: { 'x-gitea-event': 'push' },
  generic: {},
};

describe('webhook helpers', () => {
  test('normaliseRepoUrl', () => {
    const same = [
      'https://github.com/Acme/Media-Stack.git', 'http://github.com/acme/media-stack/', 'github.com/acme/media-stack',
      'git@github.com:acme/media-stack.git', 'ssh://git@github.com:22/acme/media-stack.git', 'https://user:tok@GitHub.com/acme/media-stack.git',
      'https://github.com:443/acme/media-stack', 'https://github.com/acme/media-stack.git?x=1#frag',
    ];
    for (const u of same) assert.equal(normaliseRepoUrl(u), 'github.com/acme/media-stack', u);
    assert.equal(normaliseRepoUrl('http://localhost:3000/org/repo.git'), 'localhost:3000/org/repo');
    assert.equal(normaliseRepoUrl('localhost:3000/org/repo'), 'localhost:3000/org/repo');
    for (const bad of ['', '   ', 'a b', 'https://', '/etc/passwd']) assert.equal(normaliseRepoUrl(bad), null, bad);
  });

  test('branchFromRef and extractPush', () => {
    assert.equal(branchFromRef('refs/heads/feature/x'), 'feature/x');
    assert.equal(branchFromRef('refs/tags/v1'), null);
    assert.equal(branchFromRef(42), null);
    assert.deepEqual(extractPush('gitlab', JSON.parse(payload('gitlab', 'https://gitlab.com/a/b.git'))), { urls: ['gitlab.com/a/b'], branch: 'main' });
    assert.deepEqual(extractPush('generic', { repository: 'git@h.io:a/b.git', ref: 'refs/heads/dev' }), { urls: ['h.io/a/b'], branch: 'dev' });
    assert.deepEqual(extractPush('github', 'nonsense'), { urls: [], branch: null });
  });

  test('verifySignature rejects wrong prefixes, lengths and secrets', () => {
    const body = Buffer.from('{"a":1}');
    const good = signatureHeaders('github', body, 's');
    assert.equal(verifySignature('github', good, body, 's'), true);
    assert.equal(verifySignature('github', good, body, 't'), false);
    assert.equal(verifySignature('github', good, Buffer.from('{"a":2}'), 's'), false);
    assert.equal(verifySignature('github', { 'x-hub-signature-256': good['x-hub-signature-256']!.slice(7) }, body, 's'), false);
    assert.equal(verifySignature('github', { 'x-hub-signature-256': 'sha256=' }, body, 's'), false);
    assert.equal(verifySignature('gitlab', { 'x-gitlab-token': 's' }, body, ''), false);
    assert.equal(verifySignature('gitea', { 'x-forgejo-signature': signatureHeaders('gitea', body, 's')['x-gitea-signature']! }, body, 's'), true);
  });
});

describe('POST /api/webhooks/:provider', () => {
  let s: Served;
  let sup: FakeSupervisor;
  before(async () => {
    const w = world();
    w.supervisor.targets = [
      { key: 'homelab/media-stack', url: 'github.com/acme/media-stack', branch: 'main', webhookSecret: REPO_SECRET },
      { key: 'homelab/dns', url: 'git@github.com:acme/dns.git', branch: 'main' },
      { key: 'lab/web', url: 'https://gitea.example/acme/web', branch: 'prod' },
    ];
    s = await serve({ ...w, webhookSecret: GLOBAL_SECRET });
    sup = w.supervisor;
  });
  after(() => s.close());
  beforeEach(() => {
    sup.calls = [];
  });

  const post = (provider: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${s.url}/api/webhooks/${provider}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  for (const provider of ['github', 'gitlab', 'gitea', 'generic'] as const) {
    test(`${provider}: a valid signature triggers a check of the matching repository`, async () => {
      const body = payload(provider, 'https://github.com/acme/media-stack.git');
      const res = await post(provider, body, { ...EVENT[provider], ...signatureHeaders(provider, body, REPO_SECRET) });
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { matched: ['homelab/media-stack'] });
      assert.deepEqual(sup.callsOf('check'), [{ method: 'check', key: 'homelab/media-stack', opts: 'webhook' }]);
    });

    test(`${provider}: an invalid or missing signature → 401 and no check`, async () => {
      const body = payload(provider, 'https://github.com/acme/media-stack.git');
      const wrong = await post(provider, body, { ...EVENT[provider], ...signatureHeaders(provider, body, 'not-the-secret') });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      const missing = await post(provider, body, EVENT[provider]);
      assert.equal(missing.status, 401);
      // Signed with the right secret but for a different body (tampered payload).
      const tampered = await post(provider, `${body} `, { ...EVENT[provider], ...signatureHeaders(provider, body, REPO_SECRET) });
      // GitLab's token does not sign the body, so only the HMAC providers can detect tampering.
      assert.equal(tampered.status, provider === 'gitlab' ? 202 : 401);
      assert.equal(sup.callsOf('check').length, provider === 'gitlab' ? 1 : 0);
    });
  }

  test('the global secret signs repositories without their own; the repo secret is not accepted for others', async () => {
    const body = payload('github', 'git@github.com:acme/dns.git');
    const ok = await post('github', body, { ...EVENT.github, ...signatureHeaders('github', body, GLOBAL_SECRET) });
    assert.equal(ok.status, 202);
    assert.deepEqual(await ok.json(), { matched: ['homelab/dns'] });
    const other = await post('github', body, { ...EVENT.github, ...signatureHeaders('github', body, REPO_SECRET) });
    assert.equal(other.status, 401);
    assert.equal(sup.callsOf('check').length, 1);
  });

  test('branch mismatch, tag push and unknown repository → 202 with no match and no check', async () => {
    for (const body of [
      payload('github', 'https://github.com/acme/media-stack.git', 'refs/heads/dev'),
      payload('github', 'https://github.com/acme/media-stack.git', 'refs/tags/v1.0.0'),
      payload('github', 'https://github.com/acme/unknown.git'),
    ]) {
      const res = await post('github', body, EVENT.github);
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { matched: [] });
    }
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('pings and test events → 200 {pong:true}; other events ignored; nothing checked', async () => {
    const ping = await post('github', '{"zen":"Keep it simple"}', { 'x-github-event': 'ping' });
    assert.equal(ping.status, 200);
    assert.deepEqual(await ping.json(), { pong: true });
    const gitea = await post('gitea', '{}', { 'x-gitea-event': 'ping' });
    assert.deepEqual(await gitea.json(), { pong: true });
    const issues = await post('github', '{}', { 'x-github-event': 'issues' });
    assert.equal(issues.status, 200);
    assert.deepEqual(await issues.json(), { ignored: true, event: 'issues' });
    const mr = await post('gitlab', '{}', { 'x-gitlab-event': 'Merge Request Hook' });
    assert.deepEqual(await mr.json(), { ignored: true, event: 'Merge Request Hook' });
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('GitHub form-encoded deliveries are verified over the raw form body', async () => {
    const body = `payload=${encodeURIComponent(payload('github', 'https://github.com/acme/media-stack.git'))}`;
    const res = await fetch(`${s.url}/api/webhooks/github`, {
      method: 'POST', body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...EVENT.github, ...signatureHeaders('github', body, REPO_SECRET) },
    });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { matched: ['homelab/media-stack'] });
  });

  test('unknown provider → 404; bad JSON → 400; wrong content type → 415; no URL → 400', async () => {
    assert.equal((await post('bitbucket', '{}')).status, 404);
    assert.equal((await post('github', '{"ref":', EVENT.github)).status, 400);
    assert.equal((await post('github', '{}', { ...EVENT.github, 'content-type': 'text/plain' })).status, 415);
    assert.equal((await post('generic', '{"branch":"main"}')).status, 400);
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('a suspended repository is matched but its check reports false (still 202)', async () => {
    sup.repos[0] = { ...sup.repos[0]!, suspended: true };
    try {
      const body = payload('generic', 'github.com/acme/media-stack');
      const res = await post('generic', body, signatureHeaders('generic', body, REPO_SECRET));
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { matched: ['homelab/media-stack'] });
      assert.equal(sup.callsOf('check').length, 1);
    } finally {
      sup.repos[0] = { ...sup.repos[0]!, suspended: false };
    }
  });

  test('body over 1 MiB → 413 (Content-Length and chunked), server keeps serving', async () => {
    const big = Buffer.alloc(BODY_LIMIT + 1, 0x20);
    const res = await post('github', big, EVENT.github).catch((e: unknown) => e);
    assert.ok(res instanceof Response, `fetch failed: ${String(res)}`);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');

    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${s.url}/api/webhooks/generic`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('response', (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent <= BODY_LIMIT + chunk.length) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(status, 413);
    assert.equal((await fetch(`${s.url}/api/health`)).status, 200);
    assert.deepEqual(sup.callsOf('check'), []);
  });
});

describe('webhook without any secret', () => {
  test('a repository with no secret and no global secret refuses even correctly formed deliveries', async () => {
    const w = world();
    w.supervisor.targets = [{ key: 'lab/web', url: 'https://gitea.example/acme/web', branch: 'prod' }];
    const { log, lines } = captureLogger();
    const s = await serve({ ...w, log });
    try {
      const body = payload('gitea', 'https://gitea.example/acme/web.git', 'refs/heads/prod');
      const unsigned = await fetch(`${s.url}/api/webhooks/gitea`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(unsigned.status, 401);
      const signed = await fetch(`${s.url}/api/webhooks/gitea`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...signatureHeaders('gitea', body, 'guess') }, body,
      });
      assert.equal(signed.status, 401);
      assert.deepEqual(w.supervisor.callsOf('check'), []);
      assert.ok(lines.some((l) => l['msg'] === 'webhook refused: missing or invalid signature'));
      assert.ok(!JSON.stringify(lines).includes('guess'), 'signatures/secrets are not logged');
    } finally {
      await s.close();
    }
  });
});
